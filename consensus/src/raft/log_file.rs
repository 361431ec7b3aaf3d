//! The Raft log's own files: append-only segments of checksummed records, made durable with one
//! `fdatasync` per append round, as etcd's WAL is. sled is not used for the log because it makes
//! data stable with `sync_file_range`, which flushes neither the file's metadata nor the disk's
//! write cache; the state machine stays on sled (it is rebuilt from this log after a crash).
//!
//! The barrier of an append is taken by `durability.rs` on a thread of its own, so that it runs
//! while the entry is replicated.
//!
//! A record is `[payload length: u32 LE][crc32 of index and payload: u32 LE][index: u64 LE]
//! [payload]`. A segment is named by the index of its first record and holds consecutive
//! indices. After a crash, a torn record at the end of the last segment (a write the barrier had
//! not covered, so never acknowledged) is cut off; a bad record anywhere else is corruption and
//! the log refuses to open. The vote and the purged mark live in `meta.json`, replaced
//! atomically (write, barrier, rename, barrier on the folder).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::write_path;

/// A segment is closed and a new one started once it holds this many bytes.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes before a record's payload: length, checksum, index.
const HEADER_BYTES: usize = 16;
/// A record's payload may not be larger (a corrupt length must not allocate gigabytes).
const MAX_PAYLOAD_BYTES: u32 = 256 * 1024 * 1024;
const META_FILE: &str = "meta.json";
const META_TMP_FILE: &str = "meta.json.tmp";
const SEGMENT_SUFFIX: &str = ".log";

/// A record as stored: its index and payload.
pub type Stored = (u64, Vec<u8>);

/// One file of consecutive records.
#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Byte offset of each record: record `first + i` starts at `offsets[i]`.
    offsets: Vec<u64>,
    len: u64,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

/// The log's folder: its segments, in index order.
#[derive(Debug)]
pub struct LogFiles {
    dir: PathBuf,
    segments: Vec<Segment>,
}

/// A file whose writes a barrier must make durable.
pub struct PendingBarrier(Arc<File>);

impl PendingBarrier {
    /// `fdatasync`: blocks until the written records are on stable storage.
    pub fn wait(self) -> io::Result<()> {
        sync_data(&self.0)
    }

    /// The file, for a barrier taken elsewhere (`durability.rs`).
    pub fn into_file(self) -> Arc<File> {
        self.0
    }
}

fn sync_data(file: &File) -> io::Result<()> {
    write_path::count_barrier();
    file.sync_data()
}

/// Makes the folder's entries (created, renamed and removed files) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    write_path::count_barrier();
    File::open(dir)?.sync_all()
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// Appends one record's bytes to `out`.
fn encode_record(index: u64, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD_BYTES)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a log entry of {} bytes is too large", payload.len()),
            )
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(index, payload).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A decoded record: its index, its payload's position in the buffer, and where the next starts.
struct Record {
    index: u64,
    payload: std::ops::Range<usize>,
    end: usize,
}

/// The record at `at` in `bytes`, or `None` if it is torn or fails its checksum.
fn decode_record(bytes: &[u8], at: usize) -> Option<Record> {
    let header = bytes.get(at..at + HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let index = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > MAX_PAYLOAD_BYTES {
        return None;
    }
    let start = at + HEADER_BYTES;
    let end = start + len as usize;
    let payload = bytes.get(start..end)?;
    (checksum(index, payload) == crc).then_some(Record {
        index,
        payload: start..end,
        end,
    })
}

impl LogFiles {
    /// Opens (or creates) the log in `dir`, checking every record, and returns it with its last
    /// `keep_last` records, `(index, payload)` in index order (the rest are read when asked
    /// for, not held in memory). A torn tail of the last segment is cut off.
    pub fn open(dir: &Path, keep_last: usize) -> io::Result<(LogFiles, Vec<Stored>)> {
        std::fs::create_dir_all(dir)?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(first) = name
                .strip_suffix(SEGMENT_SUFFIX)
                .and_then(|n| n.parse::<u64>().ok())
            {
                names.push((first, path));
            }
        }
        names.sort();
        let mut segments = Vec::new();
        let mut records = std::collections::VecDeque::new();
        let last = names.len().saturating_sub(1);
        for (position, (first, path)) in names.into_iter().enumerate() {
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let mut offsets = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let Some(record) = decode_record(&bytes, at) else {
                    if position != last {
                        return Err(corrupt(format!(
                            "{}: a damaged record at byte {at} of a segment that is not the last",
                            path.display()
                        )));
                    }
                    tracing::warn!(
                        "{}: cutting a torn record at byte {at} (it was never acknowledged)",
                        path.display()
                    );
                    file.set_len(at as u64)?;
                    sync_data(&file)?;
                    break;
                };
                let expected = first + offsets.len() as u64;
                if record.index != expected {
                    return Err(corrupt(format!(
                        "{}: record {} where {expected} was expected",
                        path.display(),
                        record.index
                    )));
                }
                offsets.push(at as u64);
                if keep_last > 0 {
                    if records.len() == keep_last {
                        records.pop_front();
                    }
                    records.push_back((record.index, bytes[record.payload.clone()].to_vec()));
                }
                at = record.end;
            }
            let len = at as u64;
            if let Some(previous) = segments.last().map(Segment::next_index) {
                if previous != first {
                    return Err(corrupt(format!(
                        "{}: starts at {first} but the segment before ends at {}",
                        path.display(),
                        previous - 1
                    )));
                }
            }
            segments.push(Segment {
                first,
                path,
                file: Arc::new(file),
                offsets,
                len,
            });
        }
        // What a killed process wrote may still be only in the page cache: made durable now,
        // so that everything the log holds from here on can be counted as durable.
        if let Some(last) = segments.last() {
            sync_data(&last.file)?;
        }
        Ok((
            LogFiles {
                dir: dir.to_path_buf(),
                segments,
            },
            records.into(),
        ))
    }

    /// The index the next record must have, if the log holds or held any.
    pub fn next_index(&self) -> Option<u64> {
        self.segments.last().map(Segment::next_index)
    }

    /// Writes `records` (consecutive indices following the log's last) without a barrier:
    /// the returned [`PendingBarrier`] makes them durable.
    pub fn append(&mut self, records: &[(u64, &[u8])]) -> io::Result<PendingBarrier> {
        let Some(&(first, _)) = records.first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "nothing to append",
            ));
        };
        match self.next_index() {
            Some(next) if next != first => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("log entry {first} appended where {next} was expected"),
                ));
            }
            _ => {}
        }
        let full = self.segments.last().is_none_or(|s| s.len >= SEGMENT_BYTES);
        if full {
            self.start_segment(first)?;
        }
        let segment = self.segments.last_mut().expect("a segment was started");
        let mut buffer = Vec::new();
        let mut offsets = Vec::with_capacity(records.len());
        for (i, &(index, payload)) in records.iter().enumerate() {
            if index != first + i as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("log entries {first}.. are not consecutive at {index}"),
                ));
            }
            offsets.push(segment.len + buffer.len() as u64);
            encode_record(index, payload, &mut buffer)?;
        }
        segment.file.write_all_at(&buffer, segment.len)?;
        segment.len += buffer.len() as u64;
        segment.offsets.extend(offsets);
        Ok(PendingBarrier(segment.file.clone()))
    }

    /// A new, empty segment whose first record will be `first`; its name is made durable.
    fn start_segment(&mut self, first: u64) -> io::Result<()> {
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            first,
            path,
            file: Arc::new(file),
            offsets: Vec::new(),
            len: 0,
        });
        Ok(())
    }

    /// The payload of record `index`, if the log holds it.
    pub fn read(&self, index: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(segment) = self
            .segments
            .iter()
            .rev()
            .find(|s| s.first <= index && index < s.next_index())
        else {
            return Ok(None);
        };
        let i = (index - segment.first) as usize;
        let start = segment.offsets[i];
        let end = segment.offsets.get(i + 1).copied().unwrap_or(segment.len);
        let mut bytes = vec![0; (end - start) as usize];
        segment.file.read_exact_at(&mut bytes, start)?;
        let record = decode_record(&bytes, 0).ok_or_else(|| {
            corrupt(format!(
                "{}: record {index} fails its checksum",
                segment.path.display()
            ))
        })?;
        Ok(Some(bytes[record.payload].to_vec()))
    }

    /// Removes the records from `index` on, durably (a follower's conflicting entries).
    pub fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let mut removed = false;
        while self.segments.last().is_some_and(|s| s.first >= index) {
            let segment = self.segments.pop().expect("checked");
            std::fs::remove_file(&segment.path)?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        if let Some(segment) = self.segments.last_mut() {
            if index < segment.next_index() {
                let keep = (index - segment.first) as usize;
                segment.len = segment.offsets[keep];
                segment.offsets.truncate(keep);
                segment.file.set_len(segment.len)?;
                sync_data(&segment.file)?;
            }
        }
        if self.segments.is_empty() {
            self.start_segment(index)?;
        }
        Ok(())
    }

    /// Deletes the segments that hold only records up to `index` (covered by a snapshot). When
    /// every record is covered, the log restarts empty at `index + 1`.
    pub fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        let restart = self.next_index().is_none_or(|next| next <= index + 1);
        let mut removed = false;
        while let Some(segment) = self.segments.first() {
            let covered = segment.next_index() <= index + 1;
            if !covered || (self.segments.len() == 1 && !restart) {
                break;
            }
            std::fs::remove_file(&segment.path)?;
            self.segments.remove(0);
            removed = true;
        }
        if restart && self.segments.is_empty() {
            // `start_segment` makes the folder durable.
            return self.start_segment(index + 1);
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The stored metadata (vote and purged mark), if any was written.
    pub fn read_meta(&self) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(META_FILE)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the metadata durably: written aside, made durable, renamed over the old.
    pub fn write_meta(&self, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(META_TMP_FILE);
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        sync_data(&file)?;
        std::fs::rename(&tmp, self.dir.join(META_FILE))?;
        sync_dir(&self.dir)
    }

    /// Removes every segment (before a migration writes the log afresh).
    pub fn clear(&mut self) -> io::Result<()> {
        for segment in self.segments.drain(..) {
            std::fs::remove_file(&segment.path)?;
        }
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(log: &mut LogFiles, from: u64, count: u64) {
        let payloads: Vec<Vec<u8>> = (from..from + count)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        let records: Vec<(u64, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (from + i as u64, p.as_slice()))
            .collect();
        log.append(&records).unwrap().wait().unwrap();
    }

    fn indices(records: &[(u64, Vec<u8>)]) -> Vec<u64> {
        records.iter().map(|r| r.0).collect()
    }

    #[test]
    fn records_survive_reopening_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert!(records.is_empty() && log.next_index().is_none());
        append(&mut log, 0, 3);
        append(&mut log, 3, 2);
        assert_eq!(log.read(4).unwrap().unwrap(), b"entry 4");
        assert_eq!(log.read(5).unwrap(), None);
        drop(log);
        let (log, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert_eq!(indices(&records), vec![0, 1, 2, 3, 4]);
        assert_eq!(records[2].1, b"entry 2");
        assert_eq!(log.next_index(), Some(5));
        // Only the tail is held in memory; the rest is read when asked for.
        let (tail_only, tail) = LogFiles::open(dir.path(), 2).unwrap();
        assert_eq!(indices(&tail), vec![3, 4]);
        assert_eq!(tail_only.read(1).unwrap().unwrap(), b"entry 1");
    }

    #[test]
    fn a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        append(&mut log, 1, 2);
        let err = log.append(&[(5, b"x".as_slice())]).err().unwrap();
        assert!(err.to_string().contains("5 appended where 3"), "{err}");
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        append(&mut log, 1, 3);
        let path = log.segments[0].path.clone();
        let full = std::fs::metadata(&path).unwrap().len();
        drop(log);
        // The last record half written, as a crash before its barrier can leave it.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 3).unwrap();
        let (mut log, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert_eq!(indices(&records), vec![1, 2]);
        append(&mut log, 3, 1);
        let (_, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert_eq!(indices(&records), vec![1, 2, 3]);
    }

    #[test]
    fn a_flipped_byte_in_an_earlier_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        append(&mut log, 1, 2);
        log.start_segment(3).unwrap();
        append(&mut log, 3, 2);
        let first = log.segments[0].path.clone();
        drop(log);
        let mut bytes = std::fs::read(&first).unwrap();
        bytes[HEADER_BYTES + 1] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        let err = LogFiles::open(dir.path(), usize::MAX).err().unwrap();
        assert!(err.to_string().contains("damaged record"), "{err}");
    }

    #[test]
    fn truncation_and_purging_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        append(&mut log, 1, 3);
        log.start_segment(4).unwrap();
        append(&mut log, 4, 3);
        log.truncate_from(5).unwrap();
        assert_eq!(log.next_index(), Some(5));
        append(&mut log, 5, 1);
        assert_eq!(log.read(5).unwrap().unwrap(), b"entry 5");
        log.truncate_from(2).unwrap();
        assert_eq!(log.segments.len(), 1);
        assert_eq!(log.next_index(), Some(2));
        append(&mut log, 2, 5);
        log.start_segment(7).unwrap();
        append(&mut log, 7, 1);
        log.purge_upto(6).unwrap();
        assert_eq!(log.segments.len(), 1);
        assert_eq!(log.read(7).unwrap().unwrap(), b"entry 7");
        // A snapshot past the whole log: the log restarts after it.
        log.purge_upto(20).unwrap();
        assert_eq!(log.next_index(), Some(21));
        append(&mut log, 21, 1);
        let (_, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert_eq!(indices(&records), vec![21]);
    }

    #[test]
    fn metadata_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert_eq!(log.read_meta().unwrap(), None);
        log.write_meta(b"{\"a\":1}").unwrap();
        log.write_meta(b"{\"b\":2}").unwrap();
        assert_eq!(log.read_meta().unwrap().unwrap(), b"{\"b\":2}");
        let (_, records) = LogFiles::open(dir.path(), usize::MAX).unwrap();
        assert!(records.is_empty());
    }
}
