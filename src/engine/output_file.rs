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
pub async fn read_output(path: &std::path::Path, redactor: &Redactor) -> Report {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_regular(&owned)).await;
    let content = match read {
        Ok(Read::Missing) => None,
        Ok(Read::Content(bytes)) => Some(bytes),
        Ok(Read::NotRegular(kind)) => {
            return Report::failure(
                INVALID_OUTPUT,
                format!(
                    "$ATTINI_OUTPUT ({}) is not a regular file but {kind}; write the output into the file itself",
                    path.display(),
                ),
            );
        }
        Ok(Read::TooLarge(len)) => return outcome::output_too_large(len as usize),
        Ok(Read::Failed(e)) => {
            return Report::failure(
                INVALID_OUTPUT,
                format!("could not read $ATTINI_OUTPUT ({}): {e}", path.display()),
            );
        }
        Err(join) => {
            return Report::failure(
                INVALID_OUTPUT,
                format!("could not read $ATTINI_OUTPUT ({}): {join}", path.display()),
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

/// What reading the output file gave.
enum Read {
    /// No file: no output.
    Missing,
    /// Its bytes.
    Content(Vec<u8>),
    /// Not a regular file: what it is.
    NotRegular(&'static str),
    /// Larger than [`READ_LIMIT`]: its size.
    TooLarge(u64),
    /// It could not be read.
    Failed(std::io::Error),
}

fn read_regular(path: &std::path::Path) -> Read {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
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
    if meta.len() > READ_LIMIT {
        return Read::TooLarge(meta.len());
    }
    let mut bytes = Vec::new();
    match file.take(READ_LIMIT + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > READ_LIMIT => Read::TooLarge(bytes.len() as u64),
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
