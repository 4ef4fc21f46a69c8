//! Where a job is ([`Phase`]: admission, workspace, commands, output, report) and which of its
//! commands runs, and since when. The script notes the start of each command
//! (its 1-based index and bash's `$EPOCHREALTIME`) as one line appended to a file in the job
//! directory, on the command's own line so that bash's line numbers stay those of the Attini
//! Runner. The runner reads that file only when asked: `/jobs` reads the last index
//! ([`Progress::current`]), the engine reads every start at the end for the trace. A note
//! that cannot be written is skipped, never a failure of the job; the one visible effect is
//! that `$?` is 0 when a command starts. Nothing to cancel.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When one command started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandStart {
    /// 1-based index in the job's command list.
    pub index: usize,
    /// When bash reached it.
    pub at: SystemTime,
}

/// Where a job is, from its receipt to its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Received; parsed, checked, its secrets, role and distribution looked up.
    Admission,
    /// Its workspace is being prepared (download, unpack, copy).
    Workspace,
    /// Its commands run.
    Commands,
    /// Its output is being read.
    Output,
    /// Its log is finished and its answer sent.
    Report,
}

impl Phase {
    /// The name `/jobs` and the log give it.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Admission => "admission",
            Phase::Workspace => "workspace",
            Phase::Commands => "commands",
            Phase::Output => "output",
            Phase::Report => "report",
        }
    }
}

/// A running job's progress: its phases with when each began (told by the worker and the
/// engine), and its progress file (which command runs), shared with whoever wants to know
/// (the ops server, the `job finished` line).
#[derive(Debug, Default)]
pub struct Progress {
    file: OnceLock<PathBuf>,
    phases: std::sync::Mutex<Vec<(Phase, tokio::time::Instant)>>,
}

impl Progress {
    /// The job entered `phase` at `at`.
    pub fn enter_at(&self, phase: Phase, at: tokio::time::Instant) {
        self.lock().push((phase, at));
    }

    /// The job enters `phase` now.
    pub fn enter(&self, phase: Phase) {
        self.enter_at(phase, tokio::time::Instant::now());
    }

    /// Whether the job ever entered `phase`.
    pub fn reached(&self, phase: Phase) -> bool {
        self.lock().iter().any(|(p, _)| *p == phase)
    }

    /// The phase the job is in.
    pub fn phase(&self) -> Option<Phase> {
        self.lock().last().map(|(phase, _)| *phase)
    }

    /// How long each phase took, in order, the last one until `end`.
    pub fn spent(&self, end: tokio::time::Instant) -> Vec<(Phase, Duration)> {
        let phases = self.lock();
        phases
            .iter()
            .enumerate()
            .map(|(n, (phase, began))| {
                let until = phases.get(n + 1).map_or(end, |(_, next)| *next);
                (*phase, until.saturating_duration_since(*began))
            })
            .collect()
    }

    /// The milliseconds `spent` (from [`Progress::spent`]) gives `phase`, all its spells
    /// together; `None` when the job never entered it.
    pub fn total_ms(spent: &[(Phase, Duration)], phase: Phase) -> Option<u64> {
        let mut spells = spent.iter().filter(|(p, _)| *p == phase).peekable();
        spells.peek()?;
        Some(spells.map(|(_, d)| *d).sum::<Duration>().as_millis() as u64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Phase, tokio::time::Instant)>> {
        self.phases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names the job's progress file (once, when its directory exists).
    pub fn attach(&self, file: PathBuf) {
        let _ = self.file.set(file);
    }

    /// The index of the command running now (1-based); `None` before the first. Reads the
    /// file's last [`TAIL_BYTES`] only.
    pub fn current(&self) -> Option<usize> {
        let text = read_safely(self.file.get()?, TAIL_BYTES)?;
        parse(&text).last().map(|s| s.index)
    }
}

/// The text put before command `index` on its line: appends `<index> <time>` to `file`,
/// silently, whatever the job did to its shell options or standard error.
pub fn mark(index: usize, file: &Path) -> String {
    let quoted = shlex::try_quote(&file.to_string_lossy())
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| "/dev/null".into());
    format!(
        "{{ builtin printf '%s %s\\n' {index} \"${{EPOCHREALTIME-}}\" >>{quoted}; }} 2>/dev/null || :; "
    )
}

/// Every start noted in `file` (nothing when it cannot be read), from its last [`MAX_BYTES`].
pub fn read(file: &Path) -> Vec<CommandStart> {
    read_safely(file, MAX_BYTES)
        .map(|text| parse(&text))
        .unwrap_or_default()
}

/// Bytes read from the end of the file for [`Progress::current`]: 64 KiB.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// Bytes read from the end of the file for [`read`]: 4 MiB (some 150,000 commands).
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The last `max` bytes of `file` (from the first whole line among them), if it is a regular
/// file. The job owns the file: one it replaced by a FIFO, a device or a symlink (to
/// `/dev/zero`, say) is not read, and opening never waits (`O_NONBLOCK`, `O_NOFOLLOW`).
fn read_safely(file: &Path, max: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let mut opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(file)
        .ok()?;
    let meta = opened.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let skip = meta.len().saturating_sub(max);
    opened.seek(SeekFrom::Start(skip)).ok()?;
    let mut bytes = Vec::new();
    opened.take(max).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let whole = match (skip > 0, text.find('\n')) {
        (true, Some(at)) => &text[at + 1..],
        _ => &text[..],
    };
    Some(whole.to_string())
}

/// The well-formed lines of a progress file; others (a job that wrote there) are skipped.
pub fn parse(text: &str) -> Vec<CommandStart> {
    text.lines()
        .filter_map(|line| {
            let (index, time) = line.split_once(' ')?;
            // A locale may write the decimal separator as a comma.
            let seconds: f64 = time.trim().replace(',', ".").parse().ok()?;
            let at = UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)?;
            Some(CommandStart {
                index: index.parse().ok()?,
                at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Phases as the worker and the engine enter them: the one the job is in, those it
    /// reached, how long each spell took (the last until the end given), and the names
    /// `/jobs` and the log give them.
    #[tokio::test(start_paused = true)]
    async fn phases_entered_give_the_phase_now_and_each_spell_in_order() {
        use Phase::*;
        let ms = Duration::from_millis;
        let progress = Progress::default();
        assert_eq!(progress.phase(), None);
        let t0 = tokio::time::Instant::now();
        progress.enter_at(Admission, t0);
        tokio::time::advance(ms(5)).await;
        progress.enter(Workspace);
        assert_eq!(progress.phase(), Some(Workspace));
        progress.enter_at(Commands, t0 + ms(12));
        assert_eq!(progress.phase(), Some(Commands));
        assert!(progress.reached(Workspace) && !progress.reached(Report));
        assert_eq!(
            progress.spent(t0 + ms(20)),
            [(Admission, ms(5)), (Workspace, ms(7)), (Commands, ms(8))]
        );
        assert_eq!(
            [Admission, Workspace, Commands, Output, Report].map(Phase::label),
            ["admission", "workspace", "commands", "output", "report"]
        );
    }

    #[test]
    fn a_phase_totals_its_spells_and_one_never_entered_is_none() {
        let ms = Duration::from_millis;
        let spent = [
            (Phase::Admission, ms(3)),
            (Phase::Commands, ms(40)),
            (Phase::Admission, ms(2)),
        ];
        assert_eq!(Progress::total_ms(&spent, Phase::Admission), Some(5));
        assert_eq!(Progress::total_ms(&spent, Phase::Commands), Some(40));
        assert_eq!(Progress::total_ms(&spent, Phase::Workspace), None);
    }

    #[test]
    fn a_fifo_a_link_or_a_huge_file_is_not_read_whole_or_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read_safely(&fifo, 10), None, "a FIFO is not read");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read_safely(&link, 10), None, "a symlink is not followed");
        let big = tmp.path().join("big");
        let lines: String = (1..=20_000)
            .map(|i| format!("{i} 1700000000.5\n"))
            .collect();
        std::fs::write(&big, &lines).unwrap();
        let progress = Progress::default();
        progress.attach(big.clone());
        assert_eq!(progress.current(), Some(20_000));
        let tail = read_safely(&big, 100).unwrap();
        assert!(tail.len() <= 100 && tail.starts_with("19"), "{tail}");
        assert_eq!(read(&big).len(), 20_000);
    }

    /// `/jobs` finds the command running under up to 64 KiB that a job wrote after it, and
    /// reads no further back; the trace reads 4 MiB back, some 150,000 commands.
    #[test]
    fn the_running_command_is_read_from_the_last_64_kib_and_every_start_from_4_mib() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("progress");
        let noise = |kib: usize| "x".repeat(1023).repeat(kib).replace("xx", "x\n");
        let progress = Progress::default();
        progress.attach(file.clone());
        std::fs::write(&file, format!("7 1700000000.5\n{}", noise(63))).unwrap();
        assert_eq!(progress.current(), Some(7));
        std::fs::write(&file, format!("7 1700000000.5\n{}", noise(65))).unwrap();
        assert_eq!(progress.current(), None);
        let starts = |n: usize| {
            (1..=n)
                .map(|i| format!("{i:06} 1700000000.5\n"))
                .collect::<String>()
        };
        // 20 bytes a line: 150,000 lines are 2.9 MiB, 220,000 are 4.2 MiB.
        std::fs::write(&file, starts(150_000)).unwrap();
        assert_eq!(read(&file).len(), 150_000);
        std::fs::write(&file, starts(220_000)).unwrap();
        let kept = read(&file);
        assert_eq!(kept.last().map(|s| s.index), Some(220_000));
        assert_eq!(
            kept.len(),
            (4 * 1024 * 1024) / 20,
            "the last 4 MiB, whole lines"
        );
    }

    #[test]
    fn lines_parse_and_garbage_is_skipped() {
        let starts = parse("1 1700000000.250000\nnoise\n2 1700000001,5\n3 \n");
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0].index, 1);
        assert_eq!(
            starts[1].at.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1_700_000_001_500)
        );
    }

    #[test]
    fn the_mark_quotes_the_path() {
        let m = mark(2, Path::new("/tmp/a b'c/progress"));
        assert!(
            m.starts_with("{ builtin printf '%s %s\\n' 2 \"${EPOCHREALTIME-}\" >>"),
            "{m}"
        );
        assert!(
            m.contains(r#"'/tmp/a b'"'"'c/progress'"#) || m.contains(r#""/tmp/a b'c/progress""#),
            "{m}"
        );
        assert!(m.ends_with("|| :; "), "{m}");
    }
}
