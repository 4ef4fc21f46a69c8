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

    /// A file holding `bytes`, rewound.
    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file
    }

    /// A classic record: entries on this disk and in all, the directory's size and offset,
    /// and a comment of `comment` bytes.
    fn eocd(disk: u16, total: u16, size: u32, offset: u32, comment: usize) -> Vec<u8> {
        let mut b = EOCD.to_vec();
        b.extend([0u8; 4]);
        b.extend(disk.to_le_bytes());
        b.extend(total.to_le_bytes());
        b.extend(size.to_le_bytes());
        b.extend(offset.to_le_bytes());
        b.extend((comment as u16).to_le_bytes());
        b
    }

    /// A ZIP64 locator pointing at a record at `record_at`.
    fn locator(record_at: u64) -> Vec<u8> {
        let mut b = LOCATOR.to_vec();
        b.extend([0u8; 4]);
        b.extend(record_at.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b
    }

    /// A ZIP64 record claiming `total` entries.
    fn record64(total: u64) -> Vec<u8> {
        let mut b = EOCD64.to_vec();
        b.extend(44u64.to_le_bytes());
        b.extend([0u8; 12]);
        b.extend(total.to_le_bytes());
        b.extend(total.to_le_bytes());
        b.extend([0u8; 16]);
        assert_eq!(b.len(), 56);
        b
    }

    /// Ten bytes of padding, a ZIP64 record claiming `zip64` entries, its locator, then `eocd`.
    fn zip64_file(zip64: u64, eocd: Vec<u8>) -> File {
        let mut bytes = vec![0u8; 10];
        bytes.extend(record64(zip64));
        bytes.extend(locator(10));
        bytes.extend(eocd);
        file_of(&bytes)
    }

    #[test]
    fn a_record_marked_in_any_field_takes_the_zip64_count() {
        for (total, size, offset) in [(0xFFFF, 100, 100), (3, u32::MAX, 100), (3, 100, u32::MAX)] {
            let mut file = zip64_file(5_000_000, eocd(total, total, size, offset, 0));
            assert_eq!(
                claimed_entries(&mut file).unwrap(),
                Some(5_000_000),
                "marked by {total} {size} {offset}"
            );
            assert_eq!(file.stream_position().unwrap(), 0);
        }
    }

    #[test]
    fn an_unmarked_record_keeps_its_count_whatever_precedes_it() {
        let mut file = zip64_file(9, eocd(3, 3, 100, 100, 0));
        assert_eq!(claimed_entries(&mut file).unwrap(), Some(3));
    }

    #[test]
    fn a_locator_pointing_at_no_record_leaves_the_classic_count() {
        // At byte 10, 56 bytes that are no ZIP64 record (and would claim 2^64 - 1 entries).
        let mut bytes = vec![0xFFu8; 66];
        bytes.extend(locator(10));
        bytes.extend(eocd(0xFFFF, 0xFFFF, 100, 100, 0));
        assert_eq!(claimed_entries(&mut file_of(&bytes)).unwrap(), Some(0xFFFF));
        let mut past_the_end = locator(1 << 40);
        past_the_end.extend(eocd(0xFFFF, 0xFFFF, 100, 100, 0));
        assert_eq!(
            claimed_entries(&mut file_of(&past_the_end)).unwrap(),
            Some(0xFFFF)
        );
    }

    #[test]
    fn a_record_too_near_the_start_for_a_locator_keeps_its_count() {
        let mut bytes = vec![0u8; 5];
        bytes.extend(eocd(0xFFFF, 0xFFFF, 100, 100, 0));
        assert_eq!(claimed_entries(&mut file_of(&bytes)).unwrap(), Some(0xFFFF));
    }

    #[test]
    fn a_locator_at_the_very_start_of_the_file_is_read() {
        // The locator, then the record whose comment holds the ZIP64 record at byte 42.
        let mut bytes = locator(42);
        bytes.extend(eocd(0xFFFF, 0xFFFF, 100, 100, 56));
        bytes.extend(record64(70_000));
        assert_eq!(claimed_entries(&mut file_of(&bytes)).unwrap(), Some(70_000));
    }

    #[test]
    fn the_count_in_all_is_read_not_this_disks() {
        let bytes = eocd(0, 300, 100, 100, 0);
        assert_eq!(claimed_entries(&mut file_of(&bytes)).unwrap(), Some(300));
    }

    #[test]
    fn a_file_without_the_record_claims_nothing() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"not a zip at all").unwrap();
        assert_eq!(claimed_entries(&mut file).unwrap(), None);
    }
}
