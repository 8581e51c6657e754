//! The two OTLP file encodings, as the OpenTelemetry Collector's file
//! exporter writes them: protobuf messages each behind a 4-byte big-endian
//! length, or OTLP JSON one request per line. Either may be gzipped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use prost::Message;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// How a dataset's OTLP requests are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Length-delimited protobuf (`.pb`).
    #[default]
    Protobuf,
    /// OTLP JSON, one request per line (`.jsonl`).
    Json,
}

impl Encoding {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Protobuf => "pb",
            Self::Json => "jsonl",
        }
    }
}

/// The file of one signal (`traces`, `metrics`) in `dir`.
pub fn signal_path(dir: &Path, signal: &str, encoding: Encoding, gzip: bool) -> PathBuf {
    let gz = if gzip { ".gz" } else { "" };
    dir.join(format!("{signal}.{}{gz}", encoding.extension()))
}

/// Protobuf messages larger than this are refused as corrupt.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
        }
    }
}

/// Appends requests of one signal to its file.
pub struct RequestWriter {
    sink: Sink,
    encoding: Encoding,
    buffer: Vec<u8>,
    pub(crate) written: u64,
}

impl RequestWriter {
    pub fn create(path: &Path, encoding: Encoding, gzip: bool) -> io::Result<Self> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let sink = if gzip {
            Sink::Gzip(Box::new(GzEncoder::new(file, Compression::fast())))
        } else {
            Sink::Plain(file)
        };
        Ok(Self {
            sink,
            encoding,
            buffer: Vec::new(),
            written: 0,
        })
    }

    pub fn write<M: Message + Serialize>(&mut self, request: &M) -> io::Result<()> {
        self.buffer.clear();
        match self.encoding {
            Encoding::Protobuf => {
                let length = u32::try_from(request.encoded_len())
                    .map_err(|_| io::Error::other("request larger than 4 GiB"))?;
                self.buffer.extend_from_slice(&length.to_be_bytes());
                request.encode(&mut self.buffer).map_err(io::Error::other)?;
            }
            Encoding::Json => {
                serde_json::to_writer(&mut self.buffer, request).map_err(io::Error::other)?;
                self.buffer.push(b'\n');
            }
        }
        self.sink.write_all(&self.buffer)?;
        self.written += 1;
        Ok(())
    }

    /// Flushes everything, the gzip trailer included.
    pub fn finish(self) -> io::Result<()> {
        match self.sink {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: record {record}: {reason}")]
pub struct RecordError {
    pub path: String,
    /// 1-based position of the record in the file.
    pub record: u64,
    pub reason: String,
    /// The rest of the file cannot be read either (broken framing or I/O).
    pub fatal: bool,
}

/// Reads requests of one signal back, in file order.
pub struct RequestReader<M> {
    source: BufReader<Box<dyn Read + Send>>,
    encoding: Encoding,
    path: String,
    record: u64,
    done: bool,
    line: Vec<u8>,
    _message: std::marker::PhantomData<fn() -> M>,
}

impl<M: Message + Default + DeserializeOwned> RequestReader<M> {
    pub fn open(path: &Path) -> io::Result<Self> {
        let name = path.to_string_lossy();
        let gzip = name.ends_with(".gz");
        let encoding = if name.trim_end_matches(".gz").ends_with(".jsonl") {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let file = File::open(path)?;
        let source: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(Self {
            source: BufReader::with_capacity(1 << 20, source),
            encoding,
            path: name.into_owned(),
            record: 0,
            done: false,
            line: Vec::new(),
            _message: std::marker::PhantomData,
        })
    }

    fn error(&mut self, reason: String, fatal: bool) -> RecordError {
        self.done |= fatal;
        RecordError {
            path: self.path.clone(),
            record: self.record,
            reason,
            fatal,
        }
    }

    fn next_protobuf(&mut self) -> Option<Result<M, RecordError>> {
        let mut length = [0u8; 4];
        match read_exact_or_eof(&mut self.source, &mut length) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => return Some(Err(self.error(e.to_string(), true))),
        }
        let length = u32::from_be_bytes(length) as usize;
        if length > MAX_MESSAGE_BYTES {
            let reason = format!("length prefix {length} is over {MAX_MESSAGE_BYTES} bytes");
            return Some(Err(self.error(reason, true)));
        }
        let mut bytes = vec![0u8; length];
        if let Err(e) = self.source.read_exact(&mut bytes) {
            let reason = format!("truncated: {e}");
            return Some(Err(self.error(reason, true)));
        }
        Some(M::decode(bytes.as_slice()).map_err(|e| self.error(e.to_string(), false)))
    }

    fn next_json(&mut self) -> Option<Result<M, RecordError>> {
        loop {
            self.line.clear();
            match self.source.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(self.error(e.to_string(), true))),
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = serde_json::from_slice(&self.line);
            return Some(parsed.map_err(|e| self.error(e.to_string(), false)));
        }
    }
}

impl<M: Message + Default + DeserializeOwned> Iterator for RequestReader<M> {
    type Item = Result<M, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.record += 1;
        let next = match self.encoding {
            Encoding::Protobuf => self.next_protobuf(),
            Encoding::Json => self.next_json(),
        };
        if next.is_none() {
            self.done = true;
        }
        next
    }
}

/// Fills `buf`; `Ok(false)` at a clean end of file before the first byte.
fn read_exact_or_eof(source: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated length prefix",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads a JSON file whole.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `value` as pretty JSON, via a temporary file so a reader never
/// sees half of it.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let partial = path.with_extension("json.partial");
    let text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    std::fs::write(&partial, text)?;
    std::fs::rename(partial, path)
}
