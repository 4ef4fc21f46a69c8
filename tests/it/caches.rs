//! Named tool caches with real bash through the engine: a job's cache is there for the next
//! job that names it; two jobs at once never share a home, so neither sees what the other is
//! writing; a job without caches keeps the runner's HOME; with the tool caches off, caches are
//! ignored. Workspace caches with real zips: a folder comes back while its key files are
//! unchanged, and never from a job that failed.

use attini_runner::engine::outcome::Report;
use serde_json::json;

use crate::harness::*;

/// A job naming the npm cache that runs `commands` (with `$HOME` in its output).
fn npm_job(commands: &[String]) -> attini_runner::job::JobSpec {
    native(json!({"commands": commands, "caches": ["npm"]}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_cache_is_there_for_the_next_job_that_names_it() {
    let h = Harness::new();
    let first = npm_job(&[
        "echo downloaded > $HOME/.npm/package".into(),
        "echo \"\\\"$HOME\\\"\" > $ATTINI_OUTPUT".into(),
    ]);
    let (result, _) = h.run(&first, None).await;
    let first_home = output(&result);
    let second = npm_job(&["echo \"\\\"$(cat $HOME/.npm/package)\\\"\" > $ATTINI_OUTPUT".into()]);
    let (result, _) = h.run(&second, None).await;
    assert_eq!(output(&result), json!("downloaded"));
    // The runner's HOME is not the pool's.
    let plain = native(json!({"commands": ["echo \"\\\"$HOME\\\"\" > $ATTINI_OUTPUT"]}));
    let (result, _) = h.run(&plain, None).await;
    assert_ne!(output(&result), first_home);
    assert_eq!(output(&result), json!(std::env::var("HOME").unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_at_once_never_see_each_others_cache_being_written() {
    let h = Harness::new();
    let (gate, written) = (h.path("gate"), h.path("written"));
    let writing = npm_job(&[
        "echo partial > $HOME/.npm/half-written".into(),
        format!("touch {}", written.display()),
        format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display()),
        "echo \"\\\"$HOME\\\"\" > $ATTINI_OUTPUT".into(),
    ]);
    // The reader looks once the writer has written, while it waits at its gate.
    let reading = npm_job(&[
        format!("while [ ! -e {} ]; do sleep 0.05; done", written.display()),
        "if [ -e $HOME/.npm/half-written ]; then echo '\"saw it\"'; else echo \"\\\"$HOME\\\"\"; fi > $ATTINI_OUTPUT".into(),
    ]);
    let (writer, reader) = tokio::join!(h.run(&writing, None), async {
        let read = h.run(&reading, None).await;
        std::fs::write(&gate, "").unwrap();
        read
    });
    let (writer_home, reader_home) = (output(&writer.0), output(&reader.0));
    assert_ne!(reader_home, json!("saw it"));
    assert_ne!(writer_home, reader_home);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_tool_caches_off_a_job_keeps_the_runners_home() {
    let h = Harness::with(|c| c.tool_cache_bytes = 0);
    let job = npm_job(&["echo \"\\\"$HOME\\\"\" > $ATTINI_OUTPUT".into()]);
    let (result, _) = h.run(&job, None).await;
    assert_eq!(output(&result), json!(std::env::var("HOME").unwrap()));
}

/// A job of a distribution holding `package-lock.json`: says whether `node_modules` was there
/// and what it holds, makes it when it was not, then runs `then`.
fn install_job(then: &str) -> attini_runner::job::JobSpec {
    native(json!({
        "commands": [
            "if [ -d node_modules ]; then found=$(cat node_modules/made); else found=none; mkdir node_modules; cat package-lock.json > node_modules/made; fi",
            "echo \"found=$found home=$HOME\"",
            then,
        ],
        "workspaceCaches": [{"path": "node_modules", "keyFiles": ["package-lock.json"]}],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_folder_comes_back_while_its_key_files_are_unchanged_and_never_from_a_failed_job()
 {
    let h = Harness::new();
    let zip = |lock: &str| {
        let path = h.path(&format!("{lock}.zip"));
        write_zip(
            &path,
            &[Entry::File("package-lock.json", lock.as_bytes(), 0o644)],
        );
        Some(zip_source(&path))
    };
    let (ok, spoil) = (
        install_job("true"),
        // Takes the kept folder and spoils it, then fails.
        install_job("echo spoiled > node_modules/made; exit 3"),
    );
    // (job, its lock file, what it finds in node_modules, why)
    let steps = [
        (&ok, "v1", "none", "a new runner"),
        (&ok, "v1", "v1", "put back for the same lock file"),
        (&ok, "v2", "none", "another lock file starts without it"),
        (&spoil, "v2", "v2", "v2's folder is the one kept"),
        (&ok, "v2", "none", "nothing kept from the failed job"),
        (&ok, "v2", "v2", "kept again"),
    ];
    let home = std::env::var("HOME").unwrap();
    for (job, lock, expected, why) in steps {
        let (result, lines) = h.run(job, zip(lock)).await;
        // Only workspace caches: the job keeps the runner's HOME.
        let line = format!("found={expected} home={home}");
        assert!(lines.contains(&line), "{why}: {lines:?}");
        if std::ptr::eq(job, &spoil) {
            assert!(failure(&result).1.starts_with("Script exited with code 3"));
        } else {
            assert!(
                matches!(result.report, Report::Success { .. }),
                "{result:?}"
            );
        }
    }
    assert!(h.leftover_job_dirs().await.is_empty());
}
