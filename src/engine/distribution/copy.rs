//! Copying a tree (a cache entry or a local folder) into a job's fresh workspace: files with
//! their permission bits, folders, symlinks as symlinks. Blocking code: run it on a blocking
//! thread; it cannot be cancelled half-way (the caller removes the partial copy).

use std::fs;
use std::io;
use std::path::Path;

/// Copies the contents of `from` into `to` (created if missing); returns the bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &dest)?;
        } else if kind.is_dir() {
            bytes += copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            // fs::copy keeps the permission bits and uses copy_file_range where it can.
            bytes += fs::copy(entry.path(), &dest)?;
        }
        // Sockets, fifos and devices are not distribution content: skipped.
    }
    Ok(bytes)
}
