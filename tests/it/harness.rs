//! Test harness: an engine in a temporary work directory, a log sink that captures lines,
//! a zip builder and process checks. Real bash, real processes, real zips.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attini_runner::engine::EngineConfig;
use attini_runner::engine::distribution::Source;
use attini_runner::engine::executor::LogSink;
use attini_runner::engine::outcome::Report;
use attini_runner::engine::{Engine, JobResult, RunOptions};
use attini_runner::job::{self, JobSpec};
use tokio_util::sync::CancellationToken;

/// An engine whose work directory is a temporary folder.
pub struct Harness {
    pub tmp: tempfile::TempDir,
    pub engine: Engine,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(edit: impl FnOnce(&mut EngineConfig)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = attini_runner::config::Settings::from_lookup(|_| None)
            .unwrap()
            .engine;
        config.work_dir = tmp.path().join("work");
        config.kill_grace = Duration::from_secs(1);
        config.job_timeout = crate::world::TEST_JOB_TIMEOUT;
        edit(&mut config);
        Harness {
            engine: Engine::new(config).unwrap(),
            tmp,
        }
    }

    /// A path inside the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs a job and returns its result and the lines it printed.
    pub async fn run(&self, job: &JobSpec, source: Option<Source>) -> (JobResult, Vec<String>) {
        let sink = Arc::new(Capture::default());
        let options = RunOptions {
            source,
            ..RunOptions::default()
        };
        let result = self
            .engine
            .run(job, &options, sink.clone(), &CancellationToken::new())
            .await;
        let lines = sink.lines();
        (result, lines)
    }

    /// Files left in job directories (must be none after every job), once the engine has
    /// removed the directories of the jobs that returned. The spare directories the engine
    /// makes ahead for the next jobs are not a job's.
    pub async fn leftover_job_dirs(&self) -> Vec<PathBuf> {
        self.engine.settled().await;
        let mut found = Vec::new();
        for run in std::fs::read_dir(self.path("work")).unwrap().flatten() {
            // Beside each runner's folder lies its lock file.
            if !run.path().is_dir() {
                continue;
            }
            for job in std::fs::read_dir(run.path().join("jobs"))
                .unwrap()
                .flatten()
            {
                let name = job.file_name().to_string_lossy().into_owned();
                if !name.starts_with(attini_runner::engine::job_dirs::SPARE_PREFIX) {
                    found.push(job.path());
                }
            }
        }
        found
    }
}

/// A native job from JSON.
pub fn native(value: serde_json::Value) -> JobSpec {
    job::parse(&value.to_string()).unwrap()
}

/// Collects output lines.
#[derive(Default)]
pub struct Capture(Mutex<Vec<String>>);

impl Capture {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl LogSink for Capture {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

/// The success output, or a panic naming the failure.
pub fn output(result: &JobResult) -> serde_json::Value {
    match &result.report {
        Report::Success { output } => serde_json::from_str(output).unwrap(),
        other => panic!("expected success, got {other:?}"),
    }
}

/// The failure error and cause, or a panic.
pub fn failure(result: &JobResult) -> (String, String) {
    match &result.report {
        Report::Failure { error, cause } => (error.clone(), cause.clone()),
        other => panic!("expected failure, got {other:?}"),
    }
}

/// The value of the first line `key=value` printed by a job.
pub fn printed(lines: &[String], key: &str) -> i32 {
    let prefix = format!("{key}=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line in {lines:?}"))
        .trim()
        .parse()
        .unwrap()
}

/// True while the process exists in any state (a zombie counts: it was not reaped).
pub fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// True while any process is in the group.
pub fn group_exists(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

/// An entry of a test zip.
pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// Writes a zip with `entries` to `path`.
pub fn write_zip(path: &Path, entries: &[Entry]) {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for entry in entries {
        match entry {
            Entry::File(name, data, mode) => {
                let options = SimpleFileOptions::default().unix_permissions(*mode);
                zip.start_file(*name, options).unwrap();
                zip.write_all(data).unwrap();
            }
            Entry::Dir(name) => zip
                .add_directory(*name, SimpleFileOptions::default())
                .unwrap(),
            Entry::Link(name, target) => zip
                .add_symlink(*name, *target, SimpleFileOptions::default())
                .unwrap(),
        }
    }
    zip.finish().unwrap();
}

/// A zip source for `path`.
pub fn zip_source(path: &Path) -> Source {
    Source::local(path).unwrap()
}

/// Asserts a process's exit code, showing its stdout and stderr when it differs.
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// Exit status, stdout and stderr, for a failure message.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a zip with one deflated file of `real_len` zero bytes whose local and central headers
/// both claim it unpacks to `claimed_len` bytes: a bomb that lies.
pub fn write_lying_zip(path: &Path, real_len: usize, claimed_len: u32) {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("zeros", options).unwrap();
    zip.write_all(&vec![0u8; real_len]).unwrap();
    let mut bytes = zip.finish().unwrap().into_inner();
    let mut patched = 0;
    // (signature, offset of the uncompressed size in that header)
    for (signature, offset) in [(0x04034b50u32, 22), (0x02014b50u32, 24)] {
        let sig = signature.to_le_bytes();
        let at = (0..bytes.len() - 4)
            .find(|&i| bytes[i..i + 4] == sig)
            .expect("zip header not found");
        bytes[at + offset..at + offset + 4].copy_from_slice(&claimed_len.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2);
    std::fs::write(path, bytes).unwrap();
}

/// Writes a 98-byte zip that is only an end of central directory (ZIP64) claiming `entries`
/// entries in a central directory of `entries * 46` bytes that starts `entries` bytes in:
/// the archive a parser sizes its tables from before reading a single entry.
pub fn write_claiming_zip(path: &Path, entries: u64) {
    let mut bytes = Vec::new();
    // ZIP64 end of central directory record.
    bytes.extend(0x0606_4b50u32.to_le_bytes());
    bytes.extend(44u64.to_le_bytes());
    bytes.extend(45u16.to_le_bytes());
    bytes.extend(45u16.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(entries.to_le_bytes());
    bytes.extend(entries.to_le_bytes());
    bytes.extend((entries * 46).to_le_bytes());
    bytes.extend(entries.to_le_bytes());
    // Its locator.
    bytes.extend(0x0706_4b50u32.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u32.to_le_bytes());
    // The classic record, every field saying "see ZIP64".
    bytes.extend(0x0605_4b50u32.to_le_bytes());
    bytes.extend([0u8; 4]);
    bytes.extend([0xFF; 4]);
    bytes.extend([0xFF; 8]);
    bytes.extend(0u16.to_le_bytes());
    assert_eq!(bytes.len(), 98);
    std::fs::write(path, bytes).unwrap();
}

/// The peak resident memory of this process so far, in MiB (`VmHWM`; nextest runs each test
/// in a process of its own).
pub fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// A loopback port free at the time of asking (for a server the test starts next).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Sends SIGTERM to a running child (the first stop signal: a runner drains).
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("the child is still running") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}
