//! Reading a job's `$ATTINI_OUTPUT` after its processes are gone: only a regular file, never
//! more than the Step Functions limit plus a margin, turned into the success payload by the
//! output rules ([`super::outcome`]) or into the failure that says what was wrong. Nothing to
//! cancel: it runs once, after the job.

use super::outcome::{self, MAX_OUTPUT_BYTES, RUNTIME_ERROR, Report};
use super::redact::Redactor;

/// The success payload from the output file, or the failure that replaces it. Only a regular
/// file is read: a FIFO would block the runner, a device or a symlink could read what is not
/// the job's; each is a clear failure instead. The job's processes are gone by now, so the file
/// cannot change between the check and the read.
pub async fn read_output(path: &std::path::Path, redactor: &Redactor) -> Report {
    // Past this size no amount of surrounding whitespace makes the payload fit.
    const READ_LIMIT: u64 = MAX_OUTPUT_BYTES as u64 + 64 * 1024;
    let content = match tokio::fs::symlink_metadata(path).await {
        Err(_) => None,
        Ok(meta) if !meta.file_type().is_file() => {
            return Report::failure(
                RUNTIME_ERROR,
                format!(
                    "$ATTINI_OUTPUT ({}) is not a regular file but {}; write the output into the file itself",
                    path.display(),
                    describe_file_type(&meta.file_type())
                ),
            );
        }
        Ok(meta) if meta.len() > READ_LIMIT => {
            return outcome::output_too_large(meta.len() as usize);
        }
        Ok(_) => match tokio::fs::read(path).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                return Report::failure(
                    RUNTIME_ERROR,
                    format!("could not read $ATTINI_OUTPUT ({}): {e}", path.display()),
                );
            }
        },
    };
    match outcome::output_payload(content.as_deref(), redactor) {
        Ok(output) => Report::Success { output },
        Err(failure) => failure,
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
