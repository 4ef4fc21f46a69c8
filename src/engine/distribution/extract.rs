//! Safe extraction of a distribution zip into an empty directory.
//!
//! Rejected, each with an error naming the entry: names that are absolute or contain `..`
//! (zip-slip), symlinks whose target is absolute or resolves outside the directory, more
//! than [`ExtractLimits::max_entries`] entries (read from the end of central directory record,
//! ZIP64 included, before the archive is parsed, so a zip claiming millions of entries costs
//! one 64 KiB read), and more than [`ExtractLimits::max_bytes`] of content
//! (counted while writing, so a lying header does not help a zip bomb). Symlinks are created
//! only after every file is written, so no write can ever go through one. On error the
//! caller removes the directory. Blocking code: run it on a blocking thread; a stop flag
//! ([`Opened::extract`]) ends it before the next entry.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Bounds on what one distribution may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Total uncompressed bytes; default 4 GiB (`ATTINI_DISTRIBUTION_MAX_BYTES`).
    pub max_bytes: u64,
    /// Number of entries; default 200,000.
    pub max_entries: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_entries: 200_000,
        }
    }
}

/// Why a zip was not extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file is not a readable zip (truncated, corrupt, encrypted, unsupported method).
    #[error("the distribution is not a valid zip archive: {0}")]
    Corrupt(#[from] zip::result::ZipError),
    /// An entry's name would write outside the directory.
    #[error("the distribution contains the entry {entry:?}, {reason}; refusing to extract it")]
    UnsafePath {
        /// The entry name as stored in the zip.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A symlink points outside the directory.
    #[error(
        "the distribution contains the symlink {entry:?} -> {target:?}, which points outside the distribution; refusing to extract it"
    )]
    SymlinkEscape {
        /// The link's entry name.
        entry: String,
        /// Its target.
        target: String,
    },
    /// Too much content.
    #[error(
        "the distribution unpacks to more than {limit} bytes (entry {entry:?} crossed the limit); raise ATTINI_DISTRIBUTION_MAX_BYTES if it is really that large"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The entry being written when the limit was crossed.
        entry: String,
    },
    /// Too many entries.
    #[error("the distribution has {count} entries; at most {limit} are accepted")]
    TooManyEntries {
        /// Entries in the zip, as its end of central directory record says.
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// The same path appears twice with different kinds (file, directory, symlink).
    #[error(
        "the distribution contains {entry:?} twice, or both as a symlink and as a directory; refusing to extract it"
    )]
    Conflict {
        /// The entry name.
        entry: String,
    },
    /// The job was cancelled or ran out of time while its distribution was unpacked.
    #[error("the unpacking was stopped: the job was cancelled or its workspace ran out of time")]
    Stopped,
    /// Writing to the local disk failed.
    #[error("could not write {path}: {source}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Extracts `zip_path` into `dest` (which must exist and be empty); returns the bytes written.
pub fn extract(zip_path: &Path, dest: &Path, limits: ExtractLimits) -> Result<u64, ExtractError> {
    open(zip_path, limits)?.extract(dest, limits, &AtomicBool::new(false))
}

/// A zip whose central directory was read and whose entry count is within the limit.
pub struct Opened {
    archive: zip::ZipArchive<io::BufReader<fs::File>>,
}

impl Opened {
    /// The bytes its entries say they unpack to (a lying header is caught while writing).
    pub fn declared_bytes(&self) -> u64 {
        self.archive
            .decompressed_size()
            .map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX))
    }

    /// Extracts it into `dest` (which must exist and be empty); returns the bytes written.
    /// Stops before the next entry once `stop` is set.
    pub fn extract(
        self,
        dest: &Path,
        limits: ExtractLimits,
        stop: &AtomicBool,
    ) -> Result<u64, ExtractError> {
        write_entries(self.archive, dest, limits, stop)
    }
}

/// Opens `zip_path` and reads its central directory, refusing more than the entry limit
/// before parsing (see the module documentation).
pub fn open(zip_path: &Path, limits: ExtractLimits) -> Result<Opened, ExtractError> {
    let mut file = fs::File::open(zip_path).map_err(io_err(zip_path))?;
    let claimed = super::eocd::claimed_entries(&mut file).map_err(io_err(zip_path))?;
    let limit = limits.max_entries;
    if let Some(count) = claimed.filter(|&count| count > limit as u64) {
        return Err(ExtractError::TooManyEntries { count, limit });
    }
    let archive = zip::ZipArchive::new(io::BufReader::new(file))?;
    if archive.len() > limit {
        let count = archive.len() as u64;
        return Err(ExtractError::TooManyEntries { count, limit });
    }
    Ok(Opened { archive })
}

fn write_entries(
    mut archive: zip::ZipArchive<io::BufReader<fs::File>>,
    dest: &Path,
    limits: ExtractLimits,
    stop: &AtomicBool,
) -> Result<u64, ExtractError> {
    let mut written: u64 = 0;
    let mut links: Vec<(String, PathBuf, String)> = Vec::new();
    for index in 0..archive.len() {
        if stop.load(Ordering::Relaxed) {
            return Err(ExtractError::Stopped);
        }
        let mut entry = archive.by_index(index)?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let Some(rel) = safe_relative(&name)? else {
            continue; // the root directory itself
        };
        let path = dest.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&path).map_err(io_err(&path))?;
        } else if entry.is_symlink() {
            let mut target = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut target)
                .map_err(io_err(&path))?;
            check_link_target(&name, &rel, &target)?;
            links.push((name, path, target));
        } else {
            let budget = limits.max_bytes - written;
            let copied = write_file(&mut entry, &name, &path, budget)?;
            if copied > budget {
                return Err(ExtractError::TooLarge {
                    limit: limits.max_bytes,
                    entry: name,
                });
            }
            written += copied;
            set_mode(&path, entry.unix_mode())?;
        }
    }
    create_links(dest, &links)?;
    Ok(written)
}

/// Writes one file entry to `path`, reading at most `budget + 1` bytes of it (more than the
/// budget means too large, whatever its header claims); returns the bytes written.
fn write_file(
    entry: &mut impl Read,
    name: &str,
    path: &Path,
    budget: u64,
) -> Result<u64, ExtractError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    if path.is_dir() {
        return Err(ExtractError::Conflict {
            entry: name.to_string(),
        });
    }
    let mut out = fs::File::create(path).map_err(io_err(path))?;
    io::copy(&mut entry.take(budget.saturating_add(1)), &mut out).map_err(|e| {
        // The zip crate reports bad data (CRC, inflate) as io errors of kind InvalidData.
        if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
            ExtractError::Corrupt(zip::result::ZipError::Io(e))
        } else {
            ExtractError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// The entry name as a relative path, `None` for the root itself; errors for names that are
/// absolute or contain `..` or NUL.
fn safe_relative(name: &str) -> Result<Option<PathBuf>, ExtractError> {
    let unsafe_path = |reason| ExtractError::UnsafePath {
        entry: name.to_string(),
        reason,
    };
    if name.contains('\0') {
        return Err(unsafe_path("whose name contains a NUL character"));
    }
    let unified = name.replace('\\', "/");
    let bytes = unified.as_bytes();
    if unified.starts_with('/') || (bytes.len() >= 2 && bytes[1] == b':') {
        return Err(unsafe_path("which is an absolute path"));
    }
    let mut rel = PathBuf::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("which contains `..` (zip-slip)")),
            normal => rel.push(normal),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// A link target must be relative and, resolved lexically from the link's folder, stay
/// inside the distribution.
fn check_link_target(name: &str, rel: &Path, target: &str) -> Result<(), ExtractError> {
    let escape = || ExtractError::SymlinkEscape {
        entry: name.to_string(),
        target: target.to_string(),
    };
    if target.is_empty() || target.contains('\0') || Path::new(target).is_absolute() {
        return Err(escape());
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for component in Path::new(target).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(escape());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escape()),
        }
    }
    Ok(())
}

/// Creates the symlinks, then checks that each one that resolves stays inside `dest` (a chain
/// of links can escape even when every target looks fine on its own).
fn create_links(dest: &Path, links: &[(String, PathBuf, String)]) -> Result<(), ExtractError> {
    for (name, path, target) in links {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::os::unix::fs::symlink(target, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                ExtractError::Conflict {
                    entry: name.clone(),
                }
            } else {
                ExtractError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
    }
    let root = fs::canonicalize(dest).map_err(io_err(dest))?;
    for (name, path, target) in links {
        if let Ok(resolved) = fs::canonicalize(path)
            && !resolved.starts_with(&root)
        {
            return Err(ExtractError::SymlinkEscape {
                entry: name.clone(),
                target: target.clone(),
            });
        }
    }
    Ok(())
}

/// Keeps the permission bits of the zip (without set-id bits), always readable and writable
/// by the owner.
fn set_mode(path: &Path, mode: Option<u32>) -> Result<(), ExtractError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(mode) = mode else { return Ok(()) };
    let perms = fs::Permissions::from_mode((mode & 0o777) | 0o600);
    fs::set_permissions(path, perms).map_err(io_err(path))
}

/// Test support: writes at `path` a zip of `files` stored files `f0.txt`, `f1.txt`, ... of
/// `size` bytes of `a` each.
#[cfg(test)]
pub(super) fn test_zip(path: &Path, files: usize, size: usize) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..files {
        zip.start_file(format!("f{i}.txt"), options).unwrap();
        zip.write_all(&vec![b'a'; size]).unwrap();
    }
    zip.finish().unwrap();
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
