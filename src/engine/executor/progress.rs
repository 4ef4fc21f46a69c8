//! Which command of a job runs, and since when. The script notes the start of each command
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

/// A running job's progress file, shared with whoever wants to know (the ops server).
#[derive(Debug, Default)]
pub struct Progress {
    file: OnceLock<PathBuf>,
}

impl Progress {
    /// Names the job's progress file (once, when its directory exists).
    pub fn attach(&self, file: PathBuf) {
        let _ = self.file.set(file);
    }

    /// The index of the command running now (1-based); `None` before the first.
    pub fn current(&self) -> Option<usize> {
        let text = std::fs::read_to_string(self.file.get()?).ok()?;
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

/// Every start noted in `file` (nothing when it cannot be read).
pub fn read(file: &Path) -> Vec<CommandStart> {
    std::fs::read_to_string(file)
        .map(|text| parse(&text))
        .unwrap_or_default()
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
