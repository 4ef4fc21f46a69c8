//! How many entries a zip says it has, read from its end of central directory record (and
//! the ZIP64 record it points to) with one bounded read of the file's tail, before any
//! parser sizes its tables from that number. Blocking file reads; nothing to cancel.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// `PK\x05\x06`: the end of central directory record.
const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
/// `PK\x06\x07`: the ZIP64 end of central directory locator.
const LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
/// `PK\x06\x06`: the ZIP64 end of central directory record.
const EOCD64: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
/// The record's fixed part, and the longest comment after it.
const EOCD_LEN: usize = 22;
const MAX_COMMENT: usize = 65_535;
const LOCATOR_LEN: usize = 20;

/// The total entry count the zip `file` claims; `None` when it has no end of central
/// directory record (then it is no zip, and the parser says so).
pub fn claimed_entries(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    let tail_len = len.min((LOCATOR_LEN + EOCD_LEN + MAX_COMMENT) as u64);
    let tail_start = len - tail_len;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.seek(SeekFrom::Start(tail_start))?;
    file.by_ref().take(tail_len).read_to_end(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    let Some(at) = (0..=tail.len().saturating_sub(EOCD_LEN))
        .rev()
        .find(|&i| tail[i..i + 4] == EOCD)
    else {
        return Ok(None);
    };
    let classic = u64::from(u16_at(&tail, at + 10));
    let marked = classic == 0xFFFF
        || u32_at(&tail, at + 12) == u32::MAX
        || u32_at(&tail, at + 16) == u32::MAX;
    if !marked || at < LOCATOR_LEN || tail[at - LOCATOR_LEN..at - LOCATOR_LEN + 4] != LOCATOR {
        return Ok(Some(classic));
    }
    let record_at = u64_at(&tail, at - LOCATOR_LEN + 8);
    let mut record = [0u8; 56];
    file.seek(SeekFrom::Start(record_at))?;
    let read = file.read_exact(&mut record);
    file.seek(SeekFrom::Start(0))?;
    match read {
        Ok(()) if record[..4] == EOCD64 => Ok(Some(u64_at(&record, 32).max(classic))),
        // A locator pointing nowhere: the parser reports the archive as corrupt.
        _ => Ok(Some(classic)),
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: usize) -> File {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..entries {
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file(format!("f{i}"), options).unwrap();
        }
        zip.set_comment("a comment after the record").unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        file
    }

    #[test]
    fn the_count_is_read_from_the_record_and_the_file_is_rewound() {
        let mut file = zip_of(3);
        assert_eq!(claimed_entries(&mut file).unwrap(), Some(3));
        assert_eq!(file.stream_position().unwrap(), 0);
        let mut empty = zip_of(0);
        assert_eq!(claimed_entries(&mut empty).unwrap(), Some(0));
    }

    #[test]
    fn a_file_without_the_record_claims_nothing() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"not a zip at all").unwrap();
        assert_eq!(claimed_entries(&mut file).unwrap(), None);
    }
}
