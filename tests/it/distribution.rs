//! Distributions: extraction, hostile zips, the cache and workspace isolation.

use std::path::PathBuf;

use attini_runner::engine::distribution::Source;
use serde_json::json;

use crate::harness::*;

fn good_zip(h: &Harness, name: &str) -> std::path::PathBuf {
    let path = h.path(name);
    write_zip(
        &path,
        &[
            Entry::Dir("app/"),
            Entry::File("app/run.sh", b"#!/bin/bash\necho ran \"$1\"\n", 0o755),
            Entry::File("app/data.txt", b"original\n", 0o644),
            Entry::Link("run", "app/run.sh"),
        ],
    );
    path
}

#[tokio::test]
async fn a_zip_distribution_is_extracted_with_modes_and_internal_links() {
    let h = Harness::new();
    let zip = good_zip(&h, "dist.zip");
    let job = native(json!({"commands": ["./app/run.sh one", "./run two", "cat app/data.txt"]}));
    let (result, lines) = h.run(&job, Some(zip_source(&zip))).await;
    assert!(result.report.is_success(), "{:?}", result.report);
    assert_eq!(lines, ["ran one", "ran two", "original"]);
}

#[tokio::test]
async fn working_directory_inside_the_distribution() {
    let h = Harness::new();
    let zip = good_zip(&h, "dist.zip");
    let job = native(json!({"commands": ["cat data.txt"], "workingDirectory": "app"}));
    let (result, lines) = h.run(&job, Some(zip_source(&zip))).await;
    assert!(result.report.is_success());
    assert_eq!(lines, ["original"]);
}

#[tokio::test]
async fn the_second_job_uses_the_cache_and_each_job_gets_a_fresh_copy() {
    let h = Harness::new();
    let zip = good_zip(&h, "dist.zip");
    let source = zip_source(&zip);
    let change = native(json!({"commands": ["echo changed > app/data.txt", "touch app/new-file"]}));
    let (first, _) = h.run(&change, Some(source.clone())).await;
    assert!(first.report.is_success());
    // The zip is gone: the second job can only have its content from the cache.
    std::fs::remove_file(&zip).unwrap();
    let read = native(json!({"commands": ["cat app/data.txt", "test ! -e app/new-file"]}));
    let (second, lines) = h.run(&read, Some(source)).await;
    assert!(second.report.is_success(), "{:?}", second.report);
    assert_eq!(lines, ["original"]);
}

/// A zip with `data.txt` holding `data` and 1,000 bytes of padding, under a fixed identity
/// (so that rewriting the file shows whether a later job read the cache or the zip).
fn padded_zip(h: &Harness, name: &str, data: &str) -> Source {
    let path = h.path(&format!("{name}.zip"));
    let pad = vec![b'.'; 1000];
    write_zip(
        &path,
        &[
            Entry::File("data.txt", data.as_bytes(), 0o644),
            Entry::File("pad.bin", &pad, 0o644),
        ],
    );
    Source::Zip {
        path,
        identity: name.to_string(),
    }
}

/// Runs `cat data.txt` on `source`; returns once the engine made its spare copy.
async fn data_of(h: &Harness, source: &Source) -> String {
    let job = native(json!({"commands": ["cat data.txt"]}));
    let (result, lines) = h.run(&job, Some(source.clone())).await;
    assert!(result.report.is_success(), "{:?}", result.report);
    h.engine.settled().await;
    lines.join("")
}

#[tokio::test]
async fn the_cache_evicts_the_least_recently_used_entry_beyond_its_budget() {
    // Entries of about 1,001 bytes, each with its spare copy once used: room for a and b
    // with spares and c without (5,005 bytes), not for all three with spares (6,006).
    let h = Harness::with(|c| c.cache_bytes = 4000);
    let (a, b, c) = (
        padded_zip(&h, "a", "A"),
        padded_zip(&h, "b", "B"),
        padded_zip(&h, "c", "C"),
    );
    assert_eq!(data_of(&h, &a).await, "A");
    assert_eq!(data_of(&h, &b).await, "B");
    assert_eq!(data_of(&h, &a).await, "A"); // a is now used more recently than b
    assert_eq!(data_of(&h, &c).await, "C"); // over budget: b, the least recently used, goes
    // b's folder and its spare are gone from the disk: a and c remain, one spare each at most.
    assert_eq!(in_cache(&h, "entry-").len(), 2, "{:?}", in_cache(&h, ""));
    assert!(spares(&h).len() <= 2, "{:?}", spares(&h));
    // Rewrite every zip under the same identity: a cached entry still shows the old content.
    for name in ["a", "b", "c"] {
        padded_zip(&h, name, "new");
    }
    assert_eq!(data_of(&h, &a).await, "A", "a was evicted, not b");
    assert_eq!(
        data_of(&h, &b).await,
        "new",
        "b was kept, though least recently used"
    );
}

/// The spare folders in the engine's cache.
fn spares(h: &Harness) -> Vec<PathBuf> {
    in_cache(h, "spare-")
}

/// The folders and files in the engine's cache whose names start with `prefix`.
fn in_cache(h: &Harness, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for run in std::fs::read_dir(h.path("work")).unwrap().flatten() {
        let Ok(cache) = std::fs::read_dir(run.path().join("cache")) else {
            continue;
        };
        for entry in cache.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_next_job_of_a_cached_distribution_gets_a_spare_copy_by_rename() {
    use std::os::unix::fs::MetadataExt;
    let h = Harness::new();
    let source = padded_zip(&h, "a", "original");
    let job = native(json!({"commands": ["stat -c %i data.txt", "echo changed > data.txt"]}));
    let (first, _) = h.run(&job, Some(source.clone())).await;
    assert!(first.report.is_success(), "{:?}", first.report);
    h.engine.settled().await;
    let made = spares(&h);
    assert_eq!(made.len(), 1, "one spare after the first job: {made:?}");
    let inode = std::fs::metadata(made[0].join("data.txt")).unwrap().ino();
    let (second, lines) = h.run(&job, Some(source.clone())).await;
    assert!(second.report.is_success(), "{:?}", second.report);
    assert_eq!(
        lines,
        [inode.to_string()],
        "the second job's file is the spare's own (moved, not copied)"
    );
    h.engine.settled().await;
    assert_eq!(spares(&h).len(), 1, "a new spare after the second job");
    // Neither job's change reached the cache or the spares.
    assert_eq!(data_of(&h, &source).await, "original");
    assert_eq!(data_of(&h, &source).await, "original");
}

#[tokio::test]
async fn a_local_folder_is_copied_not_shared() {
    let h = Harness::new();
    let folder = h.path("folder");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("sub/f.txt"), "from folder").unwrap();
    let source = Source::local(&folder).unwrap();
    let job = native(json!({"commands": ["cat sub/f.txt", "echo overwritten > sub/f.txt"]}));
    let (result, lines) = h.run(&job, Some(source)).await;
    assert!(result.report.is_success());
    assert_eq!(lines, ["from folder"]);
    assert_eq!(
        std::fs::read_to_string(folder.join("sub/f.txt")).unwrap(),
        "from folder"
    );
}

/// Runs a job on a hostile zip; returns the Job.Invalid cause.
async fn rejected(h: &Harness, name: &str, entries: &[Entry<'_>]) -> String {
    let path = h.path(name);
    write_zip(&path, entries);
    let job = native(json!({"commands": ["echo should-not-run"]}));
    let (result, lines) = h.run(&job, Some(zip_source(&path))).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Job.Invalid");
    assert!(lines.is_empty(), "the job ran: {lines:?}");
    assert!(result.execution.is_none());
    assert!(h.leftover_job_dirs().await.is_empty());
    cause
}

#[tokio::test]
async fn zip_slip_is_rejected_and_nothing_is_written_outside() {
    let h = Harness::new();
    let cause = rejected(
        &h,
        "slip.zip",
        &[
            Entry::File("ok.txt", b"x", 0o644),
            Entry::File("../../escaped.txt", b"evil", 0o644),
        ],
    )
    .await;
    assert!(
        cause.contains("\"../../escaped.txt\", which contains `..` (zip-slip)"),
        "{cause}"
    );
    for dir in [
        h.path(""),
        h.path("work"),
        h.tmp.path().parent().unwrap().to_path_buf(),
    ] {
        assert!(!dir.join("escaped.txt").exists());
    }
}

#[tokio::test]
async fn absolute_paths_are_rejected() {
    let h = Harness::new();
    let target = h.path("absolute-target.txt");
    let name = target.to_str().unwrap().to_string();
    let cause = rejected(&h, "abs.zip", &[Entry::File(&name, b"evil", 0o644)]).await;
    assert!(cause.contains("which is an absolute path"), "{cause}");
    assert!(!target.exists());
}

#[tokio::test]
async fn symlinks_that_leave_the_distribution_are_rejected() {
    let h = Harness::new();
    let cause = rejected(&h, "link.zip", &[Entry::Link("etc", "../../../../etc")]).await;
    assert!(
        cause.contains("symlink \"etc\" -> \"../../../../etc\""),
        "{cause}"
    );
    let cause = rejected(&h, "abs-link.zip", &[Entry::Link("passwd", "/etc/passwd")]).await;
    assert!(cause.contains("points outside the distribution"), "{cause}");
    // Each target looks inside on its own; together they reach the parent folder.
    let cause = rejected(
        &h,
        "chain.zip",
        &[Entry::Link("here", "."), Entry::Link("up", "here/..")],
    )
    .await;
    assert!(cause.contains("symlink \"up\""), "{cause}");
}

#[tokio::test]
async fn a_file_written_through_a_symlinked_folder_is_not_possible() {
    let h = Harness::new();
    let cause = rejected(
        &h,
        "through.zip",
        &[
            Entry::Link("dir", "inside"),
            Entry::Dir("inside/"),
            Entry::File("dir/x", b"x", 0o644),
        ],
    )
    .await;
    assert!(
        cause.contains("\"dir\" twice, or both as a symlink and as a directory"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_zip_bomb_stops_at_the_size_limit() {
    let h = Harness::with(|c| c.limits.max_bytes = 100_000);
    let zeros = vec![0u8; 1_000_000];
    let cause = rejected(&h, "bomb.zip", &[Entry::File("zeros.bin", &zeros, 0o644)]).await;
    assert!(
        cause.contains("unpacks to more than 100000 bytes"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_zip_bomb_whose_headers_lie_is_counted_while_writing() {
    let h = Harness::with(|c| c.limits.max_bytes = 100_000);
    let path = h.path("liar.zip");
    // 4 MB of zeros whose headers claim 50,000 bytes, under the limit: a check of the headers
    // alone would let it through. The reader stops at the declared size and refuses the rest.
    write_lying_zip(&path, 4_000_000, 50_000);
    let job = native(json!({"commands": ["echo should-not-run"]}));
    let (result, lines) = h.run(&job, Some(zip_source(&path))).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Job.Invalid");
    assert!(lines.is_empty(), "the job ran: {lines:?}");
    assert!(
        cause.contains("not a valid zip archive")
            && cause.contains("larger than its declared uncompressed size"),
        "{cause}"
    );
    assert!(h.leftover_job_dirs().await.is_empty());
    // Claiming more than the limit, it is stopped by the count of bytes written.
    let path = h.path("big-liar.zip");
    write_lying_zip(&path, 4_000_000, 3_000_000);
    let (result, _) = h.run(&job, Some(zip_source(&path))).await;
    let (_, cause) = failure(&result);
    assert!(
        cause.contains("unpacks to more than 100000 bytes"),
        "{cause}"
    );
}

#[tokio::test]
async fn too_many_entries_are_rejected() {
    let h = Harness::with(|c| c.limits.max_entries = 3);
    let cause = rejected(
        &h,
        "many.zip",
        &[
            Entry::Dir("a/"),
            Entry::Dir("b/"),
            Entry::Dir("c/"),
            Entry::Dir("d/"),
        ],
    )
    .await;
    assert_eq!(
        cause,
        "the distribution has 4 entries; at most 3 are accepted"
    );
}

#[tokio::test]
async fn a_zip_claiming_millions_of_entries_is_refused_before_it_is_parsed() {
    let h = Harness::new();
    for (name, entries) in [("zip64.zip", 1_000_000_000u64), ("many.zip", 3_000_000)] {
        let zip = h.path(name);
        write_claiming_zip(&zip, entries);
        let job = native(json!({"commands": ["true"]}));
        let (result, _) = h.run(&job, Some(zip_source(&zip))).await;
        let (error, cause) = failure(&result);
        assert_eq!(error, "Job.Invalid");
        assert!(
            cause.contains(&format!(
                "the distribution has {entries} entries; at most 200000 are accepted"
            )),
            "{cause}"
        );
    }
    let peak = peak_rss_mib();
    eprintln!("peak RSS of the test process: {peak} MiB");
    assert!(peak < 200, "refusing the zips took {peak} MiB at the peak");
}

#[tokio::test]
async fn truncated_and_non_zip_files_are_rejected() {
    let h = Harness::new();
    let zip = good_zip(&h, "full.zip");
    let bytes = std::fs::read(&zip).unwrap();
    let truncated = h.path("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let job = native(json!({"commands": ["true"]}));
    let (result, _) = h.run(&job, Some(zip_source(&truncated))).await;
    assert!(
        failure(&result)
            .1
            .starts_with("the distribution is not a valid zip archive"),
        "{:?}",
        result.report
    );

    let text = h.path("notes.zip");
    std::fs::write(&text, "just text").unwrap();
    let (result, _) = h.run(&job, Some(zip_source(&text))).await;
    assert!(
        failure(&result)
            .1
            .starts_with("the distribution is not a valid zip archive")
    );
}
