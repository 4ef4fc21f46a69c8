//! Copying a tree (a cache entry or a local folder) into a job's fresh workspace: files with
//! their permission bits, folders, symlinks as symlinks. Blocking code: run it on a blocking
//! thread; it cannot be cancelled half-way (the caller removes the partial copy).

use std::fs;
use std::io;
use std::path::Path;

/// Copies the contents of `from` into `to` (created if missing); returns the bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &dest)?;
        } else if kind.is_dir() {
            bytes += copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            // fs::copy keeps the permission bits and uses copy_file_range where it can.
            bytes += fs::copy(entry.path(), &dest)?;
        }
        // Sockets, fifos and devices are not distribution content: skipped.
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_tree_is_copied_with_its_modes_and_links_and_its_bytes_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::write(from.join("a.txt"), "abc").unwrap();
        fs::write(from.join("sub/run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(from.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/run.sh", from.join("link")).unwrap();
        let to = tmp.path().join("to");
        assert_eq!(copy_tree(&from, &to).unwrap(), 3 + 9);
        assert_eq!(fs::read_to_string(to.join("a.txt")).unwrap(), "abc");
        let mode = fs::metadata(to.join("sub/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(to.join("link")).unwrap(),
            Path::new("sub/run.sh")
        );
    }
}
