//! Opening inputs: files (plain, gzip or zstd, recognised by their magic bytes), stdin (`-`)
//! and glob patterns.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One input to scan: a path, `-` for stdin, or bytes already in memory (a batch sent over
/// HTTP), named for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
    Bytes { name: String, data: Arc<[u8]> },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_owned(),
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Bytes shared with an [`Input::Bytes`], read without a copy of the whole.
struct SharedBytes {
    data: Arc<[u8]>,
    at: usize,
}

impl Read for SharedBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.at.min(self.data.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("`{pattern}`: {message}")]
    Glob { pattern: String, message: String },
    #[error("`{pattern}`: no file matches")]
    NoMatch { pattern: String },
}

/// Expand arguments: `-` is stdin; an existing path is itself; anything else with `*`, `?`
/// or `[` is a glob (sorted matches). A missing plain path is kept, so opening it reports
/// the error with its name.
pub fn expand(args: &[String]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Input::Stdin);
        } else if Path::new(arg).exists() || !arg.contains(['*', '?', '[']) {
            out.push(Input::Path(PathBuf::from(arg)));
        } else {
            let paths = glob::glob(arg).map_err(|e| InputError::Glob {
                pattern: arg.clone(),
                message: e.to_string(),
            })?;
            let mut matched: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(InputError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            matched.sort();
            out.extend(matched.into_iter().map(Input::Path));
        }
    }
    Ok(out)
}

/// How an input is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A reader that first returns `head` (bytes already read to sniff the magic), then `rest`.
struct Prefixed<R> {
    head: Vec<u8>,
    pos: usize,
    rest: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

/// Open an input, decompressing by magic bytes rather than by file name.
pub fn open(input: &Input) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::Path(p) => Box::new(File::open(p)?),
        Input::Bytes { data, .. } => Box::new(SharedBytes {
            data: data.clone(),
            at: 0,
        }),
    };
    let mut raw = raw;
    let mut head = vec![0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let joined = Prefixed {
        head,
        pos: 0,
        rest: raw,
    };
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(joined),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            joined,
        ))),
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(BufReader::with_capacity(
                256 * 1024,
                joined,
            ))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            Box::new(decoder)
        }
    };
    Ok((reader, compression))
}
