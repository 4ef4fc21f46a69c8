//! Building and spawning the job's bash: environment, working directory, stdin from
//! `/dev/null`, stdout and stderr into one pipe (so their order is kept), and its own process
//! group. When the runner has a controlling terminal (a developer's shell) the job also gets
//! a session of its own, so that a command prompting on `/dev/tty` fails at once instead of
//! being stopped in the background; without one (ECS, CI, systemd) a process group is the
//! same thing and lets the standard library spawn with `posix_spawn` instead of forking the
//! runner (about 1 ms less per job). Spawning is synchronous; nothing to cancel.

use std::io;
use std::process::Stdio;
use std::sync::LazyLock;

use tokio::process::{Child, Command};

use super::ScriptRun;
use super::procs::MARKER_VAR;

/// The shell every job runs in.
pub const BASH: &str = "bash";

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
    let mut cmd = Command::new(BASH);
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
