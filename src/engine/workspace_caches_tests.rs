use super::*;

struct Dirs {
    _root: tempfile::TempDir,
    home: PathBuf,
    cwd: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let (home, cwd) = (root.path().join("home"), root.path().join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    Dirs {
        _root: root,
        home,
        cwd,
    }
}

fn modules() -> WorkspaceCache {
    WorkspaceCache {
        path: "app/node_modules".into(),
        key_files: vec!["package-lock.json".into()],
    }
}

/// A job's end: its lock file and a `node_modules` made from it.
fn installed(cwd: &Path, lock: &str) {
    std::fs::write(cwd.join("package-lock.json"), lock).unwrap();
    let folder = cwd.join("app/node_modules/pkg");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("index.js"), lock).unwrap();
}

#[test]
fn a_kept_folder_comes_back_while_its_key_files_are_unchanged() {
    let d = dirs();
    installed(&d.cwd, "v1");
    assert_eq!(
        keep_one(&d.home, &d.cwd, &modules()).unwrap(),
        (Step::Done, None)
    );
    assert!(
        !d.cwd.join("app/node_modules").exists(),
        "moved, not copied"
    );
    // The next job's workspace: the same lock file, no node_modules (and no `app` yet).
    std::fs::remove_dir_all(&d.cwd).unwrap();
    std::fs::create_dir_all(&d.cwd).unwrap();
    std::fs::write(d.cwd.join("package-lock.json"), "v1").unwrap();
    assert_eq!(restore_one(&d.home, &d.cwd, &modules()), Step::Done);
    let index = d.cwd.join("app/node_modules/pkg/index.js");
    assert_eq!(std::fs::read_to_string(index).unwrap(), "v1");
    // Taken: a second job finds nothing until it is kept again.
    let again = restore_one(&d.home, &d.cwd, &modules());
    assert!(matches!(again, Step::Skipped(why) if why.contains("this home keeps none")));
}

#[test]
fn changed_key_files_or_a_folder_already_there_leave_the_workspace_alone() {
    let d = dirs();
    installed(&d.cwd, "v1");
    keep_one(&d.home, &d.cwd, &modules()).unwrap();
    std::fs::write(d.cwd.join("package-lock.json"), "v2").unwrap();
    let changed = restore_one(&d.home, &d.cwd, &modules());
    assert!(matches!(changed, Step::Skipped(why) if why.contains("key files changed")));
    assert!(!d.cwd.join("app/node_modules").exists());
    // The workspace's own folder (from the distribution) wins over the kept one.
    installed(&d.cwd, "v1");
    std::fs::write(d.cwd.join("app/node_modules/own"), "").unwrap();
    let there = restore_one(&d.home, &d.cwd, &modules());
    assert!(matches!(there, Step::Skipped(why) if why.contains("already has it")));
    assert!(d.cwd.join("app/node_modules/own").exists());
    // A missing key file is named.
    std::fs::remove_file(d.cwd.join("package-lock.json")).unwrap();
    let missing = restore_one(&d.home, &d.cwd, &modules());
    assert!(
        matches!(&missing, Step::Skipped(why) if why.contains("\"package-lock.json\" cannot be read")),
        "{missing:?}"
    );
}

#[test]
fn keeping_again_replaces_the_kept_folder_and_hands_back_the_old_one() {
    let d = dirs();
    installed(&d.cwd, "v1");
    keep_one(&d.home, &d.cwd, &modules()).unwrap();
    installed(&d.cwd, "v2");
    let (step, stale) = keep_one(&d.home, &d.cwd, &modules()).unwrap();
    assert_eq!(step, Step::Done);
    let stale = stale.expect("the v1 folder, to remove");
    assert_eq!(
        std::fs::read_to_string(stale.join("pkg/index.js")).unwrap(),
        "v1"
    );
    let entry = entry(&d.home, "app/node_modules");
    assert_eq!(
        std::fs::read_to_string(entry.join("folder/pkg/index.js")).unwrap(),
        "v2"
    );
    assert_eq!(
        std::fs::read_to_string(entry.join("key")).unwrap(),
        key(&d.cwd, &modules().key_files).unwrap()
    );
}

#[test]
fn nothing_is_kept_of_a_missing_folder_a_file_or_without_key_files() {
    let d = dirs();
    let none = keep_one(&d.home, &d.cwd, &modules()).unwrap();
    assert!(matches!(none, (Step::Skipped(why), None) if why.contains("no such folder")));
    std::fs::create_dir_all(d.cwd.join("app")).unwrap();
    std::fs::write(d.cwd.join("app/node_modules"), "a file").unwrap();
    let file = keep_one(&d.home, &d.cwd, &modules()).unwrap();
    assert!(matches!(file, (Step::Skipped(why), None) if why.contains("not a folder")));
    std::fs::remove_file(d.cwd.join("app/node_modules")).unwrap();
    std::fs::create_dir_all(d.cwd.join("app/node_modules")).unwrap();
    let keyless = keep_one(&d.home, &d.cwd, &modules()).unwrap();
    assert!(matches!(keyless, (Step::Skipped(why), None) if why.contains("cannot be read")));
    assert!(d.cwd.join("app/node_modules").is_dir(), "left where it was");
    assert!(!entry(&d.home, "app/node_modules").join("key").exists());
}

#[test]
fn the_key_covers_each_files_name_and_contents() {
    let d = dirs();
    std::fs::write(d.cwd.join("a"), "x").unwrap();
    std::fs::write(d.cwd.join("b"), "x").unwrap();
    let (a, b) = (key(&d.cwd, &["a".into()]), key(&d.cwd, &["b".into()]));
    assert_ne!(a, b, "same contents, other name");
    assert_eq!(a, key(&d.cwd, &["a".into()]));
    assert_eq!(a.as_ref().unwrap().len(), 64);
    std::fs::write(d.cwd.join("a"), "y").unwrap();
    assert_ne!(a, key(&d.cwd, &["a".into()]));
    // A FIFO a job left as a key file, or as the kept key in its home, is refused, not
    // waited on.
    nix::unistd::mkfifo(&d.cwd.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let fifo = key(&d.cwd, &["fifo".into()]).unwrap_err();
    assert!(fifo.contains("not a regular file"), "{fifo}");
    std::fs::create_dir(d.cwd.join("dir")).unwrap();
    assert!(key(&d.cwd, &["dir".into()]).is_err());
    let entry = entry(&d.home, "app/node_modules");
    std::fs::create_dir_all(entry.join("folder")).unwrap();
    nix::unistd::mkfifo(&entry.join("key"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(d.cwd.join("package-lock.json"), "v1").unwrap();
    let planted = restore_one(&d.home, &d.cwd, &modules());
    assert!(matches!(planted, Step::Skipped(why) if why.contains("keeps none")));
}

#[test]
fn only_a_job_run_in_its_own_workspace_has_its_folders_moved() {
    let job = crate::job::parse(
        r#"{"commands": ["x"], "workspaceCaches": [{"path": "node_modules", "keyFiles": ["package-lock.json"]}]}"#,
    )
    .unwrap();
    let workspace = Path::new("/runner/jobs/j1/workspace");
    assert_eq!(
        applying(&job, &workspace.join("app"), workspace),
        job.workspace_caches
    );
    // A job run in a folder not its own: its node_modules stays where it is.
    assert!(applying(&job, Path::new("/home/me/project"), workspace).is_empty());
}
