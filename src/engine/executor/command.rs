//! Building and spawning the job's bash: environment, working directory, stdin from
//! `/dev/null`, stdout and stderr into one pipe (so their order is kept), and its own process
//! group. When the runner has a controlling terminal (a developer's shell) the job also gets
//! a session of its own, so that a command prompting on `/dev/tty` fails at once instead of
//! being stopped in the background; without one (ECS, CI, systemd) a process group is the
//! same thing and lets the standard library spawn with `posix_spawn` instead of forking the
//! runner (about 1 ms less per job). Spawning is synchronous; nothing to cancel.

use std::ffi::OsStr;
use std::io;
use std::process::Stdio;
use std::sync::{Arc, LazyLock};

use tokio::process::{Child, Command};

use super::ScriptRun;
use super::procs::MARKER_VAR;

/// The shell every job runs in.
pub const BASH: &str = "bash";

/// [`BASH`] as found on the runner's `PATH` (`path`), as an absolute path, so that no spawn
/// tries each folder of `PATH` in turn (on this project's machine, nine failed `exec`s a job
/// while the runtime thread waited for the child's `exec`); the plain name when it is not
/// there (the spawn then fails as it always did). Found once, when the engine starts.
pub fn find_bash(path: &str) -> Arc<OsStr> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(BASH))
        .find(|candidate| is_executable(candidate))
        .map_or_else(
            || Arc::from(OsStr::new(BASH)),
            |found| Arc::from(found.as_os_str()),
        )
}

/// The program to spawn: [`ScriptRun::bash`], or [`BASH`] looked up on the job's own `PATH`
/// when its environment sets one.
fn bash_for(run: &ScriptRun) -> &OsStr {
    if run.env.iter().any(|(name, _)| name == "PATH") {
        OsStr::new(BASH)
    } else {
        &run.bash
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Capacity asked for the output pipe: 1 MiB (Linux's limit for unprivileged processes).
const PIPE_BYTES: i32 = 1 << 20;

/// A spawned job: the bash process and the read end of its output pipe.
pub struct Spawned {
    /// The job's bash, leader of its own process group.
    pub child: Child,
    /// Merged stdout and stderr of every process of the job (read on a thread of its own).
    pub output: io::PipeReader,
}

/// Spawns `bash <script>` in `cwd` with the runner's environment less `withheld`, plus `env`
/// (later entries win) and the job marker `job_id`.
pub fn spawn(run: &ScriptRun) -> io::Result<Spawned> {
    let (reader, writer) = io::pipe()?;
    // A larger pipe lets a chatty job write on while the runner handles what it read: fewer,
    // larger reads. Best effort (the system may cap pipe sizes).
    let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    let mut cmd = Command::new(bash_for(run));
    for name in &run.withheld {
        cmd.env_remove(name);
    }
    cmd.arg(&run.script)
        .current_dir(&run.cwd)
        .envs(run.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(MARKER_VAR, &run.job_id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .kill_on_drop(true);
    if has_terminal() {
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it is the
        // only thing done between fork and exec.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
        }
    } else {
        cmd.process_group(0);
    }
    let child = cmd.spawn()?;
    // `cmd` still holds the write ends of the pipe; drop it so end-of-file arrives when the
    // job's last process closes its copy.
    drop(cmd);
    Ok(Spawned {
        child,
        output: reader,
    })
}

/// Whether the runner has a controlling terminal (`/dev/tty` opens); asked once.
fn has_terminal() -> bool {
    static TERMINAL: LazyLock<bool> = LazyLock::new(|| std::fs::File::open("/dev/tty").is_ok());
    *TERMINAL
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::redact::Redactor;
    use nix::unistd::{Pid, getpgid, getsid};
    use std::time::Duration;

    #[test]
    fn bash_is_found_once_on_the_runners_path_unless_the_job_sets_its_own() {
        let mut run = ScriptRun {
            script: "job.sh".into(),
            cwd: "/".into(),
            env: vec![("A".into(), "1".into())],
            withheld: Vec::new(),
            bash: find_bash("/nonexistent:/usr/bin:/bin"),
            job_id: "bash-test".into(),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            redactor: Redactor::default(),
        };
        let found = std::path::Path::new(bash_for(&run));
        assert!(found.is_absolute() && found.ends_with("bash"), "{found:?}");
        assert!(is_executable(found));
        run.env.push(("PATH".into(), "/opt/own/bin".into()));
        assert_eq!(bash_for(&run), "bash", "looked up on the job's PATH");
        assert_eq!(
            &*find_bash("/nonexistent:relative/bin"),
            "bash",
            "not found"
        );
    }

    /// The job's output pipe is asked to hold 1 MiB; the job leads a process group of its own,
    /// in the runner's session without a terminal (CI, ECS) and in a session of its own with
    /// one. The terminal is looked up here, not through `has_terminal`, so that the test
    /// checks that function too.
    #[tokio::test]
    async fn a_job_gets_a_1_mib_pipe_and_a_process_group_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        std::fs::write(&script, "exec sleep 30\n").unwrap();
        let run = ScriptRun {
            script,
            cwd: dir.path().to_path_buf(),
            env: Vec::new(),
            withheld: Vec::new(),
            bash: Arc::from(OsStr::new(BASH)),
            job_id: "command-test".into(),
            timeout: Duration::from_secs(30),
            grace: Duration::from_secs(1),
            redactor: Redactor::default(),
        };
        let mut spawned = spawn(&run).unwrap();
        let pid = Pid::from_raw(spawned.child.id().expect("running") as i32);
        let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let size = nix::fcntl::fcntl(&spawned.output, nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap();
        if max >= 1 << 20 {
            assert_eq!(size, 1 << 20, "the output pipe's capacity in bytes");
        }
        assert_eq!(getpgid(Some(pid)).unwrap(), pid, "its own process group");
        let terminal = std::fs::File::open("/dev/tty").is_ok();
        let session = getsid(Some(pid)).unwrap();
        if terminal {
            assert_eq!(session, pid, "a session of its own under a terminal");
        } else {
            assert_eq!(session, getsid(None).unwrap(), "the runner's session");
        }
        spawned.child.kill().await.unwrap();
    }
}
