//! Extraction: limits, hostile entries, links, modes and write errors.
use super::*;
use std::io::Write;

/// A zip of `files` files of 10 bytes each, in `dir`.
fn zip_in(dir: &Path, files: usize) -> PathBuf {
    let path = dir.join(format!("{files}.zip"));
    test_zip(&path, files, 10);
    path
}

#[test]
fn a_zip_declares_the_sum_of_its_entries_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = open(&zip_in(tmp.path(), 3), ExtractLimits::default()).unwrap();
    assert_eq!(opened.declared_bytes(), 30);
}

#[test]
fn a_zip_of_exactly_the_entry_limit_opens_and_one_more_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = ExtractLimits {
        max_entries: 3,
        ..ExtractLimits::default()
    };
    assert!(open(&zip_in(tmp.path(), 3), limits).is_ok());
    match open(&zip_in(tmp.path(), 4), limits) {
        Err(ExtractError::TooManyEntries { count, limit }) => {
            assert_eq!((count, limit), (4, 3))
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("four entries opened under a limit of three"),
    }
}

#[test]
fn the_byte_limit_counts_every_entry_and_admits_a_zip_that_fills_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = zip_in(tmp.path(), 3);
    let limit = |max_bytes| ExtractLimits {
        max_bytes,
        ..ExtractLimits::default()
    };
    let exact = tmp.path().join("exact");
    fs::create_dir(&exact).unwrap();
    assert_eq!(extract(&zip, &exact, limit(30)).unwrap(), 30);
    let over = tmp.path().join("over");
    fs::create_dir(&over).unwrap();
    match extract(&zip, &over, limit(25)) {
        Err(ExtractError::TooLarge { limit, .. }) => assert_eq!(limit, 25),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_write_is_reported_as_the_disks_not_as_a_corrupt_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = zip_in(tmp.path(), 1);
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    // The entry's file is a full disk: every write fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", dest.join("f0.txt")).unwrap();
    match extract(&zip, &dest, ExtractLimits::default()) {
        Err(ExtractError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_are_checked() {
    assert_eq!(safe_relative("a/./b/").unwrap(), Some(PathBuf::from("a/b")));
    assert_eq!(safe_relative("./").unwrap(), None);
    assert!(safe_relative("../x").is_err());
    assert!(safe_relative("a/../../x").is_err());
    assert!(safe_relative("a\\..\\x").is_err());
    assert!(safe_relative("/etc/passwd").is_err());
    assert!(safe_relative("C:/x").is_err());
}

#[test]
fn link_targets_are_checked_lexically() {
    let rel = Path::new("bin/tool");
    assert!(check_link_target("bin/tool", rel, "../lib/tool.js").is_ok());
    assert!(check_link_target("bin/tool", rel, "../../etc").is_err());
    assert!(check_link_target("bin/tool", rel, "/etc/passwd").is_err());
    assert!(check_link_target("top", Path::new("top"), "..").is_err());
    // Down, then up past where it went down: still inside.
    assert!(check_link_target("bin/tool", rel, "sub/../../etc/x").is_ok());
    assert!(check_link_target("bin/tool", rel, "").is_err());
    assert!(check_link_target("bin/tool", rel, "a\0b").is_err());
}

#[test]
fn modes_are_kept_and_the_owner_may_always_read_and_write() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("modes.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    for (name, mode) in [("plain", 0o644), ("tool", 0o755), ("locked", 0o400)] {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        zip.start_file(name, options).unwrap();
        zip.write_all(b"x").unwrap();
    }
    zip.finish().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    extract(&path, &dest, ExtractLimits::default()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| fs::metadata(dest.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        [mode("plain"), mode("tool"), mode("locked")],
        [0o644, 0o755, 0o600]
    );
}
