//! The write-ahead log: every accepted export request, as received, in
//! numbered files. A record is `[length u32 LE][crc32 u32 LE][payload]`,
//! written with one `writev` call before the request is acknowledged, so a
//! killed process leaves at most a torn tail — which reading detects by
//! its length or checksum and drops, since that request was never
//! acknowledged. Files are rotated when a segment is flushed and deleted
//! once their records are in Parquet (ADR 007).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

const HEADER_BYTES: usize = 8;
/// Records above this are refused as corrupt when read back.
const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// The open log: the file being appended to.
pub(crate) struct Wal {
    dir: PathBuf,
    seq: u64,
    file: File,
    pub(crate) sync_every_append: bool,
}

pub(crate) fn path_of(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}.wal"))
}

/// The log files in `dir`, oldest first.
pub(crate) fn files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            found.push((seq, path));
        }
    }
    found.sort();
    Ok(found)
}

impl Wal {
    /// Opens a new file numbered after every existing one and at least
    /// `min_seq`, so nothing appends to a file with a torn tail and file
    /// numbers only grow.
    pub(crate) fn open(dir: &Path, min_seq: u64, sync_every_append: bool) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let after = files(dir)?.last().map_or(1, |(seq, _)| seq + 1);
        let seq = after.max(min_seq);
        let file = Self::create(dir, seq)?;
        Ok(Self {
            dir: dir.to_owned(),
            seq,
            file,
            sync_every_append,
        })
    }

    fn create(dir: &Path, seq: u64) -> io::Result<File> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path_of(dir, seq))?;
        File::open(dir)?.sync_all()?;
        Ok(file)
    }

    /// Appends one record; when this returns, a killed process keeps it.
    pub(crate) fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let length = u32::try_from(payload.len())
            .map_err(|_| io::Error::other("record larger than 4 GiB"))?;
        let mut header = [0u8; HEADER_BYTES];
        header[..4].copy_from_slice(&length.to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        write_all_vectored(&mut self.file, &header, payload)?;
        if self.sync_every_append {
            self.file.sync_data()?;
        }
        Ok(self.seq)
    }

    /// Makes everything appended so far survive a machine crash too.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Starts a new file; returns the number of the one just finished.
    pub(crate) fn rotate(&mut self) -> io::Result<u64> {
        self.file.sync_data()?;
        let finished = self.seq;
        self.file = Self::create(&self.dir, finished + 1)?;
        self.seq = finished + 1;
        Ok(finished)
    }
}

/// Writes `header` then `payload`, in one `writev` call unless the kernel
/// takes less (no copy into a buffer first).
fn write_all_vectored(file: &mut File, header: &[u8], payload: &[u8]) -> io::Result<()> {
    let mut written = 0;
    let total = header.len() + payload.len();
    while written < total {
        let result = if written < header.len() {
            let parts = [IoSlice::new(&header[written..]), IoSlice::new(payload)];
            file.write_vectored(&parts)
        } else {
            file.write(&payload[written - header.len()..])
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What reading one log file found.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) records: Vec<Vec<u8>>,
    /// Bytes at the end that were not a whole, intact record.
    pub(crate) torn_bytes: u64,
}

/// Every intact record of a log file, in order, up to the first damage.
pub(crate) fn read(path: &Path) -> io::Result<Replayed> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut out = Replayed::default();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_BYTES {
            break;
        }
        let length = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if length > MAX_RECORD_BYTES || rest.len() < HEADER_BYTES + length {
            break;
        }
        let payload = &rest[HEADER_BYTES..HEADER_BYTES + length];
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.records.push(payload.to_vec());
        at += HEADER_BYTES + length;
    }
    out.torn_bytes = (bytes.len() - at) as u64;
    Ok(out)
}
