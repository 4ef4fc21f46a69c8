//! Reading a job's `$ATTINI_OUTPUT` after its processes are gone: only a regular file, never
//! more than the Step Functions limit plus a margin, turned into the success payload by the
//! output rules ([`super::outcome`]) or into the failure that says what was wrong. Nothing to
//! cancel: it runs once, after the job.

use super::names::INVALID_OUTPUT;
use super::outcome::{self, MAX_OUTPUT_BYTES, Report};
use super::redact::Redactor;

/// The success payload from the output file, or the failure that replaces it. Only a regular
/// file is read: a FIFO would block the runner, a device or a symlink could read what is not
/// the job's; each is a clear failure instead. The file is opened first (`O_NOFOLLOW`,
/// `O_NONBLOCK`, so neither a link nor a FIFO is followed or waited on) and its type taken from
/// the open descriptor, so that nothing can swap it between the check and the read.
///
/// Read on the calling thread: at most [`READ_LIMIT`] bytes of a file the job has just
/// written (in the page cache; a FIFO is never waited on) take less than the trip to a
/// blocking thread and back would.
pub fn read_output(path: &std::path::Path, redactor: &Redactor) -> Report {
    let content = match read_regular(path, READ_LIMIT, Links::Refused) {
        Read::Missing => None,
        Read::Content(bytes) => Some(bytes),
        Read::NotRegular(kind) => {
            return Report::failure(
                INVALID_OUTPUT,
                format!(
                    "$ATTINI_OUTPUT ({}) is not a regular file but {kind}; write the output into the file itself",
                    path.display(),
                ),
            );
        }
        Read::TooLarge(len) => return outcome::output_too_large(len as usize),
        Read::Failed(e) => {
            return Report::failure(
                INVALID_OUTPUT,
                format!("could not read $ATTINI_OUTPUT ({}): {e}", path.display()),
            );
        }
    };
    match outcome::output_payload(content.as_deref(), redactor) {
        Ok(output) => Report::Success { output },
        Err(failure) => failure,
    }
}

/// Past this size no amount of surrounding whitespace makes the payload fit.
const READ_LIMIT: u64 = MAX_OUTPUT_BYTES as u64 + 64 * 1024;

/// What reading a small file a job wrote gave ([`read_regular`]).
pub(super) enum Read {
    /// No file (for the output file: no output).
    Missing,
    /// Its bytes.
    Content(Vec<u8>),
    /// Not a regular file: what it is.
    NotRegular(&'static str),
    /// Larger than the limit: its size.
    TooLarge(u64),
    /// It could not be read.
    Failed(std::io::Error),
}

/// Whether [`read_regular`] follows a symlink at the end of the path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Links {
    /// A symlink is refused as [`Read::NotRegular`] (the output file).
    Refused,
    /// A symlink is followed (a workspace cache's key file, such as a linked lock file).
    Followed,
}

/// At most `limit` bytes of the regular file at `path`, a file a job may have made anything
/// of: opened without waiting (`O_NONBLOCK`), so a FIFO is refused, never waited on, and
/// its type taken from the open descriptor, so that nothing can swap it between the check
/// and the read. Also reads workspace caches' keys (`workspace_caches.rs`).
pub(super) fn read_regular(path: &std::path::Path, limit: u64, links: Links) -> Read {
    use std::os::unix::fs::OpenOptionsExt;
    let nofollow = if links == Links::Refused {
        nix::libc::O_NOFOLLOW
    } else {
        0
    };
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow | nix::libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Missing,
        // O_NOFOLLOW on a symlink.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Read::NotRegular("a symlink");
        }
        Err(e) => return Read::Failed(e),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Read::Failed(e),
    };
    if !meta.file_type().is_file() {
        return Read::NotRegular(describe_file_type(&meta.file_type()));
    }
    read_bounded(file, meta.len(), limit)
}

/// At most `limit` bytes of a file whose size was given as `len` bytes: one said to be
/// larger is refused unread, and one that turns out larger than it said (it grew, or it is a
/// file whose size says nothing) is refused once the limit is passed.
fn read_bounded(file: impl std::io::Read, len: u64, limit: u64) -> Read {
    use std::io::Read as _;
    if len > limit {
        return Read::TooLarge(len);
    }
    let mut bytes = Vec::new();
    match file.take(limit + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > limit => Read::TooLarge(bytes.len() as u64),
        Ok(_) => Read::Content(bytes),
        Err(e) => Read::Failed(e),
    }
}

fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symlink"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn spaces(n: u64) -> Cursor<Vec<u8>> {
        Cursor::new(vec![b' '; n as usize])
    }

    /// The limit is the Step Functions payload limit with 64 KiB to spare for the whitespace
    /// around a payload, which the output rules trim.
    #[test]
    fn an_output_is_read_up_to_the_payload_limit_and_64_kib_more() {
        let limit = MAX_OUTPUT_BYTES as u64 + 64 * 1024;
        assert!(
            matches!(read_bounded(spaces(limit), limit, READ_LIMIT), Read::Content(b) if b.len() as u64 == limit)
        );
        assert!(
            matches!(read_bounded(spaces(limit + 1), limit + 1, READ_LIMIT), Read::TooLarge(n) if n == limit + 1)
        );
    }

    /// A file said to be larger is refused by its size, unread (a sparse file of a GiB is not
    /// read); one that says less than it holds is cut off one byte past the limit.
    #[test]
    fn a_file_larger_than_it_says_or_said_to_be_too_large_is_refused() {
        let limit = MAX_OUTPUT_BYTES as u64 + 64 * 1024;
        assert!(
            matches!(read_bounded(spaces(0), 1 << 30, READ_LIMIT), Read::TooLarge(n) if n == 1 << 30)
        );
        assert!(
            matches!(read_bounded(spaces(2 * limit), 0, READ_LIMIT), Read::TooLarge(n) if n == limit + 1)
        );
        assert!(matches!(
            read_bounded(spaces(limit), 0, READ_LIMIT),
            Read::Content(_)
        ));
    }

    /// Only a link is reported as a link; another failure to open says what it was.
    #[test]
    fn an_output_path_that_cannot_be_opened_is_a_failure_not_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        match read_regular(&file.join("output.json"), READ_LIMIT, Links::Refused) {
            Read::Failed(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTDIR)),
            _ => panic!("a path under a file cannot be opened"),
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            read_regular(&link, READ_LIMIT, Links::Refused),
            Read::NotRegular("a symlink")
        ));
        assert!(matches!(
            read_regular(&tmp.path().join("none"), READ_LIMIT, Links::Refused),
            Read::Missing
        ));
    }
}
