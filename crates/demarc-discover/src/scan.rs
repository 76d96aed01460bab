//! The scan engine. The calling thread reads each input in fixed-size blocks split at line
//! ends and hands them to worker threads; each worker parses every line of its blocks,
//! matches hosts and adds to its own aggregates, which are merged at the end. Memory is
//! bounded by (workers + 2) blocks plus the aggregates, whatever the input size.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::formats::{
    self, Action, FieldMap, Format, IdKind, Line, MappingError, Parser, Record, Scratch, ZeekSchema,
};
use crate::input::{self, Compression, Input};
use crate::matcher::{MAX_HOST, Matcher};
use crate::time::Micros;

/// Default block size: big enough to amortise hand-offs, small enough to bound memory.
pub const DEFAULT_BLOCK: usize = 1 << 20;
/// Most distinct (service, user) pairs kept per worker; later users are pooled as `(other)`.
pub const MAX_USERS: usize = 1_000_000;
/// How many malformed lines are kept as examples.
pub const MAX_EXAMPLES: usize = 10;
/// Most tenants (hosts of a tenant pattern) kept per service and worker; later ones are
/// pooled as `(other tenants)`.
pub const MAX_TENANTS: usize = 10_000;
/// Most (client, name) pairs a worker remembers for DNS deduplication before it forgets all.
const MAX_DNS_KEYS: usize = 1_000_000;
/// The tenant that tenants beyond `MAX_TENANTS` are pooled under.
pub const OTHER_TENANTS: &[u8] = b"(other tenants)";

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Read every input as this format instead of detecting it.
    pub format: Option<Format>,
    /// Field mapping for generic CSV, TSV and JSON-lines logs.
    pub map: Option<FieldMap>,
    /// A request that sends at least this many bytes is a large upload.
    pub large_upload: u64,
    /// Stop at the first malformed line or unreadable input.
    pub strict: bool,
    pub block_size: usize,
    /// Lookups of one name by one client within this many microseconds of the last one
    /// counted are counted once (DNS logs only); 0 counts every lookup.
    pub dns_window: i64,
    /// Compute each input's SHA-256 ([`FileSummary::sha256`]), so that a recorded input is
    /// known again (off by default: it costs the reading thread time).
    pub hash_inputs: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 1,
            format: None,
            map: None,
            large_upload: 10 << 20,
            strict: false,
            block_size: DEFAULT_BLOCK,
            dns_window: 60_000_000,
            hash_inputs: false,
        }
    }
}

/// Counters a caller may poll while a scan runs (a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub records: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUsage {
    pub requests: u64,
    /// Requests to ui, api or auth endpoints (not cdn, telemetry, widget or sdk).
    pub use_requests: u64,
    /// Bytes sent and received, over the records whose log has them (`*_known`).
    pub sent: u64,
    pub received: u64,
    pub sent_known: bool,
    pub received_known: bool,
    pub first: Option<Micros>,
    pub last: Option<Micros>,
    pub large_uploads: u64,
    pub max_upload: u64,
    /// Requests the proxy log says it refused, and said it let through.
    pub blocked: u64,
    pub allowed: u64,
    /// Endpoint roles seen (`Role::bit`).
    pub roles: u8,
    /// Records with no readable time.
    pub untimed: u64,
}

impl UserUsage {
    fn add(&mut self, rec: &Record<'_>, role_bit: u8, counts: bool, large_upload: u64) {
        self.requests += 1;
        self.use_requests += u64::from(counts);
        if let Some(n) = rec.sent {
            self.sent += n;
            self.sent_known = true;
            if n >= large_upload {
                self.large_uploads += 1;
            }
            self.max_upload = self.max_upload.max(n);
        }
        if let Some(n) = rec.received {
            self.received += n;
            self.received_known = true;
        }
        match rec.ts {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
            }
            None => self.untimed += 1,
        }
        match rec.action {
            Action::Blocked => self.blocked += 1,
            Action::Allowed => self.allowed += 1,
            Action::Unknown => {}
        }
        self.roles |= role_bit;
    }

    pub fn merge(&mut self, other: &UserUsage) {
        self.requests += other.requests;
        self.use_requests += other.use_requests;
        self.sent += other.sent;
        self.received += other.received;
        self.sent_known |= other.sent_known;
        self.received_known |= other.received_known;
        self.first = min_opt(self.first, other.first);
        self.last = max_opt(self.last, other.last);
        self.large_uploads += other.large_uploads;
        self.max_upload = self.max_upload.max(other.max_upload);
        self.blocked += other.blocked;
        self.allowed += other.allowed;
        self.roles |= other.roles;
        self.untimed += other.untimed;
    }

    /// Bytes sent, `None` when no record's log had the field.
    pub fn sent(&self) -> Option<u64> {
        self.sent_known.then_some(self.sent)
    }

    pub fn received(&self) -> Option<u64> {
        self.received_known.then_some(self.received)
    }
}

/// A user key: the identity's kind (one byte) then its name.
pub fn user_key(kind: IdKind, name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(kind as u8);
    key.extend_from_slice(name);
    key
}

/// The kind and name of a user key.
pub fn split_user_key(key: &[u8]) -> (IdKind, &[u8]) {
    match key.split_first() {
        Some((&k, name)) => (
            match k {
                1 => IdKind::Ip,
                2 => IdKind::Device,
                _ => IdKind::User,
            },
            name,
        ),
        None => (IdKind::User, key),
    }
}

fn min_opt(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Usage of one service: its totals and its users (keys from [`user_key`]). Hits on a tenant
/// pattern go to `tenants` (keyed by the host) instead; [`ServiceUsage::merged`] adds all up.
#[derive(Debug, Clone, Default)]
pub struct ServiceUsage {
    pub total: UserUsage,
    pub users: FxHashMap<Box<[u8]>, UserUsage>,
    pub tenants: FxHashMap<Box<[u8]>, ServiceUsage>,
    /// DNS lookups not counted because the same client asked for the same name within the
    /// deduplication window.
    pub dns_repeats: u64,
}

impl ServiceUsage {
    fn merge(&mut self, other: ServiceUsage) {
        self.total.merge(&other.total);
        for (user, u) in other.users {
            self.users.entry(user).or_default().merge(&u);
        }
        for (tenant, t) in other.tenants {
            self.tenants.entry(tenant).or_default().merge(t);
        }
        self.dns_repeats += other.dns_repeats;
    }

    /// The service's usage with its tenants' added in (tenants emptied).
    pub fn merged(&self) -> ServiceUsage {
        let mut all = ServiceUsage {
            total: self.total.clone(),
            users: self.users.clone(),
            tenants: FxHashMap::default(),
            dns_repeats: self.dns_repeats,
        };
        for t in self.tenants.values() {
            all.merge(t.merged());
        }
        all
    }
}

/// Usage per catalog service (indexed like `Catalog::services`).
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub services: Vec<ServiceUsage>,
}

impl Usage {
    fn merge(&mut self, other: Usage) {
        if self.services.len() < other.services.len() {
            self.services
                .resize_with(other.services.len(), ServiceUsage::default);
        }
        for (mine, theirs) in self.services.iter_mut().zip(other.services) {
            mine.merge(theirs);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub name: String,
    pub format: Option<Format>,
    pub compression: Compression,
    /// Bytes read after decompression.
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
    /// Records kept without a time because their time could not be read.
    pub untimed: u64,
    /// SHA-256 of the content as read (after decompression), when `hash_inputs` asked for it
    /// and the input was read to its end without error.
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// A problem with a whole input (cannot open, format unknown, stream cut short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct ScanResult {
    pub files: Vec<FileSummary>,
    pub records: u64,
    pub malformed: u64,
    /// Records kept without a time (their time field could not be read).
    pub untimed: u64,
    /// The first few malformed lines, in input order.
    pub malformed_examples: Vec<MalformedLine>,
    pub errors: Vec<FileError>,
    pub usage: Usage,
    /// True when `strict` stopped the scan early.
    pub stopped: bool,
}

impl ScanResult {
    /// Add the scan of other inputs to this one: the result is what one scan of all the
    /// inputs gives (usage adds up exactly; `ingest` gathers batches scanned apart this way).
    pub fn absorb(&mut self, other: ScanResult) {
        self.files.extend(other.files);
        self.records += other.records;
        self.malformed += other.malformed;
        self.untimed += other.untimed;
        let room = MAX_EXAMPLES.saturating_sub(self.malformed_examples.len());
        self.malformed_examples
            .extend(other.malformed_examples.into_iter().take(room));
        self.errors.extend(other.errors);
        self.usage.merge(other.usage);
        self.stopped |= other.stopped;
    }
}

/// A stretch of one input, cut at a line end.
struct Block {
    seq: usize,
    data: Vec<u8>,
    len: usize,
    /// Parsers in effect from each offset on (Zeek logs may change `#fields` mid-file).
    parsers: Vec<(usize, Arc<Parser>)>,
    /// The block's first line is a CSV/TSV header, not a record.
    skip_first: bool,
    /// Stands for one line longer than a block, dropped unread.
    overlong: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct BlockStat {
    lines: u64,
    records: u64,
    malformed: u64,
    untimed: u64,
}

struct WorkerOutput {
    usage: Usage,
    stats: Vec<(usize, BlockStat)>,
    /// (block seq, line within block, reason), the worker's first few.
    examples: Vec<(usize, u64, String)>,
}

/// Scan `inputs` and attribute every record to catalog services and users.
pub fn scan(
    inputs: &[Input],
    catalog: &Catalog,
    options: &ScanOptions,
    progress: &Progress,
) -> ScanResult {
    let matcher = Matcher::new(catalog);
    let threads = options.threads.max(1);
    let block_size = options.block_size.max(4096);
    let stop = AtomicBool::new(false);
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Block>(threads);
    let (pool_tx, pool_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let service_count = catalog.services().len();

    let mut result = ScanResult::default();
    // seq -> file index
    let mut block_file: Vec<usize> = Vec::new();
    let outputs: Vec<WorkerOutput> =
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for _ in 0..threads {
                let rx = work_rx.clone();
                let pool = pool_tx.clone();
                let (matcher, stop) = (&matcher, &stop);
                handles.push(scope.spawn(move || {
                    worker(rx, pool, matcher, service_count, options, stop, progress)
                }));
            }
            drop(work_rx);
            let mut reader = Reader {
                block_size,
                pool: pool_rx,
                allocated: 0,
                max_buffers: threads + 2,
                work: work_tx,
                seq: 0,
            };
            for (file_index, input) in inputs.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let summary = reader.read_input(
                    input,
                    options,
                    progress,
                    &stop,
                    &mut result.errors,
                    &mut block_file,
                    file_index,
                );
                result.files.push(summary);
            }
            drop(reader);
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });

    // Per-block line counts give each malformed line its number within its file.
    let mut stats = vec![BlockStat::default(); block_file.len()];
    let mut examples = Vec::new();
    for out in outputs {
        for (seq, s) in out.stats {
            if let Some(slot) = stats.get_mut(seq) {
                *slot = s;
            }
        }
        examples.extend(out.examples);
        result.usage.merge(out.usage);
    }
    let mut first_line = vec![0u64; stats.len()];
    let mut next_line_of_file: FxHashMap<usize, u64> = FxHashMap::default();
    for (seq, s) in stats.iter().enumerate() {
        let file = block_file[seq];
        let next = next_line_of_file.entry(file).or_insert(1);
        first_line[seq] = *next;
        *next += s.lines;
        if let Some(f) = result.files.get_mut(file) {
            f.lines += s.lines;
            f.records += s.records;
            f.malformed += s.malformed;
            f.untimed += s.untimed;
        }
    }
    examples.sort_by_key(|(seq, line, _)| (*seq, *line));
    examples.truncate(MAX_EXAMPLES);
    result.malformed_examples = examples
        .into_iter()
        .map(|(seq, line, reason)| MalformedLine {
            file: result
                .files
                .get(block_file[seq])
                .map_or_else(String::new, |f| f.name.clone()),
            line: first_line[seq] + line,
            reason,
        })
        .collect();
    result.records = result.files.iter().map(|f| f.records).sum();
    result.malformed = result.files.iter().map(|f| f.malformed).sum();
    result.untimed = result.files.iter().map(|f| f.untimed).sum();
    result.stopped = stop.load(Ordering::Relaxed);
    result
}

struct Reader {
    block_size: usize,
    pool: crossbeam_channel::Receiver<Vec<u8>>,
    allocated: usize,
    max_buffers: usize,
    work: crossbeam_channel::Sender<Block>,
    seq: usize,
}

impl Reader {
    fn buffer(&mut self) -> Option<Vec<u8>> {
        if let Ok(b) = self.pool.try_recv() {
            return Some(b);
        }
        if self.allocated < self.max_buffers {
            self.allocated += 1;
            return Some(vec![0u8; self.block_size]);
        }
        self.pool.recv().ok()
    }

    fn send(&mut self, block_file: &mut Vec<usize>, file_index: usize, mut block: Block) -> bool {
        block.seq = self.seq;
        self.seq += 1;
        block_file.push(file_index);
        self.work.send(block).is_ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn read_input(
        &mut self,
        input: &Input,
        options: &ScanOptions,
        progress: &Progress,
        stop: &AtomicBool,
        errors: &mut Vec<FileError>,
        block_file: &mut Vec<usize>,
        file_index: usize,
    ) -> FileSummary {
        let name = input.name();
        let mut summary = FileSummary {
            name: name.clone(),
            format: None,
            compression: Compression::None,
            bytes: 0,
            lines: 0,
            records: 0,
            malformed: 0,
            untimed: 0,
            sha256: None,
        };
        let mut hasher = options.hash_inputs.then(Sha256::new);
        let fail = |message: String, errors: &mut Vec<FileError>| {
            errors.push(FileError {
                file: name.clone(),
                message,
            });
            if options.strict {
                stop.store(true, Ordering::Relaxed);
            }
        };
        let (mut reader, compression) = match input::open(input) {
            Ok(r) => r,
            Err(e) => {
                fail(format!("cannot open: {e}"), errors);
                return summary;
            }
        };
        summary.compression = compression;
        let mut parsers: Vec<(usize, Arc<Parser>)> = Vec::new();
        let mut format = options.format;
        let mut carry: Vec<u8> = Vec::new();
        let mut first = true;
        let mut skipping_overlong = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(mut buf) = self.buffer() else { break };
            let mut len = carry.len().min(buf.len());
            buf[..len].copy_from_slice(&carry[..len]);
            carry.clear();
            let mut eof = false;
            while len < buf.len() {
                match reader.read(&mut buf[len..]) {
                    Ok(0) => {
                        eof = true;
                        summary.sha256 = hasher.take().map(|h| h.finalize().into());
                        break;
                    }
                    Ok(n) => {
                        if let Some(h) = hasher.as_mut() {
                            h.update(&buf[len..len + n]);
                        }
                        len += n;
                        summary.bytes += n as u64;
                        progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let what = match compression {
                            Compression::None => {
                                format!("read error after {} bytes: {e}", summary.bytes)
                            }
                            c => format!(
                                "{} stream ends early or is corrupt after {} decompressed bytes ({e}); the data before it was scanned",
                                c.name(),
                                summary.bytes
                            ),
                        };
                        fail(what, errors);
                        eof = true;
                        break;
                    }
                }
            }
            if skipping_overlong {
                // Drop the rest of a line longer than a block, up to its end.
                match memchr::memchr(b'\n', &buf[..len]) {
                    Some(nl) => {
                        skipping_overlong = false;
                        carry.extend_from_slice(&buf[nl + 1..len]);
                        let overlong = Block {
                            seq: 0,
                            data: Vec::new(),
                            len: 0,
                            parsers: parsers.clone(),
                            skip_first: false,
                            overlong: true,
                        };
                        let _ = self.send(block_file, file_index, overlong);
                    }
                    None if eof => {
                        let overlong = Block {
                            seq: 0,
                            data: Vec::new(),
                            len: 0,
                            parsers: parsers.clone(),
                            skip_first: false,
                            overlong: true,
                        };
                        let _ = self.send(block_file, file_index, overlong);
                    }
                    None => {}
                }
                self.discard(buf);
                // What follows the long line is still to be read, even at the end of input.
                if eof && carry.is_empty() {
                    break;
                }
                continue;
            }
            let end = if eof {
                len
            } else {
                match memchr::memrchr(b'\n', &buf[..len]) {
                    Some(nl) => nl + 1,
                    None => {
                        skipping_overlong = true;
                        self.discard(buf);
                        continue;
                    }
                }
            };
            carry.extend_from_slice(&buf[end..len]);
            if first {
                first = false;
                if end == 0 {
                    fail("empty file".to_owned(), errors);
                    self.discard(buf);
                    break;
                }
                let sample = &buf[..end];
                let detected = match format {
                    Some(f) => f,
                    None => match formats::detect(sample) {
                        Some(f) => f,
                        None if formats::looks_binary(sample) => {
                            fail("binary data, not a text log (is it compressed in a format other than gzip or zstd, or not a log at all?)".to_owned(), errors);
                            self.discard(buf);
                            break;
                        }
                        None => {
                            let end = memchr::memchr(b'\n', sample)
                                .unwrap_or(sample.len())
                                .min(120);
                            let first = String::from_utf8_lossy(&sample[..end]);
                            fail(
                                format!(
                                    "log format not recognised from line 1 (`{}`); name it with `--log-format` (zeek, zeek-json, squid, route53, cloudflare, zscaler, csv, tsv, jsonl)",
                                    first.trim_end()
                                ),
                                errors,
                            );
                            self.discard(buf);
                            break;
                        }
                    },
                };
                format = Some(detected);
                summary.format = Some(detected);
                match initial_parser(detected, sample, options.map.as_ref()) {
                    Ok(p) => parsers.push((0, Arc::new(p))),
                    Err(e) => {
                        fail(e.to_string(), errors);
                        self.discard(buf);
                        break;
                    }
                }
            }
            let mut block_parsers = vec![(
                0,
                parsers
                    .last()
                    .map(|(_, p)| Arc::clone(p))
                    .unwrap_or_else(|| Arc::new(Parser::Squid)),
            )];
            if format == Some(Format::Zeek) {
                for (offset, schema) in zeek_headers(&buf[..end]) {
                    if !schema.has_host() {
                        fail("zeek `#fields` has no host field (`server_name`, `host` or `query`): only http, ssl and dns logs name hosts; its records are counted as malformed".to_owned(), errors);
                    }
                    let p = Arc::new(Parser::Zeek(schema));
                    if offset == 0 {
                        block_parsers[0].1 = Arc::clone(&p);
                    } else {
                        block_parsers.push((offset, Arc::clone(&p)));
                    }
                    parsers = vec![(0, p)];
                }
            }
            let skip_first = block_file.last() != Some(&file_index)
                && matches!(format, Some(Format::Csv | Format::Tsv));
            let block = Block {
                seq: 0,
                data: buf,
                len: end,
                parsers: block_parsers,
                skip_first,
                overlong: false,
            };
            if !self.send(block_file, file_index, block) || eof {
                break;
            }
        }
        summary
    }

    fn discard(&mut self, buf: Vec<u8>) {
        // A buffer that was never sent: free it so a later one may be allocated.
        self.allocated = self.allocated.saturating_sub(1);
        drop(buf);
    }
}

/// `#fields` lines in a block: their offsets and schemas.
fn zeek_headers(data: &[u8]) -> Vec<(usize, ZeekSchema)> {
    let mut found = Vec::new();
    let mut push = |start: usize| {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        found.push((
            start,
            ZeekSchema::from_fields_line(line.strip_suffix(b"\r").unwrap_or(line)),
        ));
    };
    if data.starts_with(b"#fields\t") {
        push(0);
    }
    for i in memchr::memmem::find_iter(data, b"\n#fields\t") {
        push(i + 1);
    }
    found
}

fn initial_parser(
    format: Format,
    sample: &[u8],
    map: Option<&FieldMap>,
) -> Result<Parser, ParserError> {
    let need_map = || map.ok_or(ParserError::NeedsMap(format));
    let header = || {
        let end = memchr::memchr(b'\n', sample).unwrap_or(sample.len());
        sample[..end].strip_suffix(b"\r").unwrap_or(&sample[..end])
    };
    Ok(match format {
        // Replaced by the first `#fields` line; until then every line is malformed.
        Format::Zeek => Parser::Zeek(ZeekSchema::from_fields_line(b"#fields")),
        Format::ZeekJson => Parser::ZeekJson,
        Format::Squid => Parser::Squid,
        Format::Route53 => Parser::Route53,
        Format::Cloudflare => Parser::Cloudflare,
        Format::Zscaler => Parser::Zscaler,
        Format::Csv => Parser::delimited(b',', header(), need_map()?)?,
        Format::Tsv => Parser::delimited(b'\t', header(), need_map()?)?,
        Format::JsonLines => Parser::JsonLines(need_map()?.clone()),
    })
}

/// Why no parser could be set up for a log.
#[derive(Debug, thiserror::Error)]
enum ParserError {
    #[error("format `{0}` needs a field mapping (`--map host=COLUMN,user=COLUMN,...`)")]
    NeedsMap(Format),
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

fn worker(
    rx: crossbeam_channel::Receiver<Block>,
    pool: crossbeam_channel::Sender<Vec<u8>>,
    matcher: &Matcher,
    service_count: usize,
    options: &ScanOptions,
    stop: &AtomicBool,
    progress: &Progress,
) -> WorkerOutput {
    let mut out = WorkerOutput {
        usage: Usage {
            services: vec![ServiceUsage::default(); service_count],
        },
        stats: Vec::new(),
        examples: Vec::new(),
    };
    let mut scratch = Scratch::default();
    let mut state = AccountState::default();
    for block in rx {
        let mut stat = BlockStat::default();
        if block.overlong {
            stat.lines = 1;
            stat.malformed = 1;
            if out.examples.len() < MAX_EXAMPLES {
                out.examples
                    .push((block.seq, 0, "line longer than a block; skipped".to_owned()));
            }
        } else if !stop.load(Ordering::Relaxed) {
            let data = &block.data[..block.len];
            let mut parser_index = 0;
            let mut start = 0;
            let mut line_no = 0u64;
            while start < data.len() {
                let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
                let line = &data[start..end];
                while parser_index + 1 < block.parsers.len()
                    && block.parsers[parser_index + 1].0 <= start
                {
                    parser_index += 1;
                }
                if !(line_no == 0 && block.skip_first) {
                    match block.parsers[parser_index].1.parse(line, &mut scratch) {
                        Ok(Line::Record(rec)) => {
                            stat.records += 1;
                            stat.untimed += u64::from(rec.bad_time);
                            account(&mut out.usage, matcher, &rec, options, &mut state);
                        }
                        Ok(Line::Skip) => {}
                        Err(reason) => {
                            stat.malformed += 1;
                            if out.examples.len() < MAX_EXAMPLES {
                                out.examples.push((block.seq, line_no, reason.into_owned()));
                            }
                            if options.strict {
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                }
                line_no += 1;
                start = end + 1;
            }
            stat.lines = line_no;
        }
        progress.records.fetch_add(stat.records, Ordering::Relaxed);
        out.stats.push((block.seq, stat));
        if !block.data.is_empty() {
            let _ = pool.send(block.data);
        }
    }
    out
}

const OTHER_USERS: &[u8] = b"(other)";
/// The name of a missing identity (a log line with neither user nor address).
pub const UNKNOWN_USER: &[u8] = b"(unknown)";

/// A worker's bookkeeping between records.
#[derive(Default)]
struct AccountState {
    /// Distinct (service, user) pairs so far.
    users: usize,
    /// DNS deduplication: (client, name) -> time of the last lookup counted.
    dns: FxHashMap<Box<[u8]>, Micros>,
    key: Vec<u8>,
}

#[inline]
fn account(
    usage: &mut Usage,
    matcher: &Matcher,
    rec: &Record<'_>,
    options: &ScanOptions,
    state: &mut AccountState,
) {
    if rec.host.is_empty() {
        return;
    }
    let mut buf = [0u8; MAX_HOST];
    let Some((hit, tenant)) = matcher.lookup_tenant(&rec.host, &mut buf) else {
        return;
    };
    let Some(service) = usage.services.get_mut(hit.service as usize) else {
        return;
    };
    let name: &[u8] = if rec.user.is_empty() {
        UNKNOWN_USER
    } else {
        &rec.user
    };
    state.key.clear();
    state.key.push(rec.id_kind as u8);
    state.key.extend_from_slice(name);
    if rec.dns
        && options.dns_window > 0
        && let Some(t) = rec.ts
    {
        let user_len = state.key.len();
        state.key.push(0);
        state.key.extend_from_slice(tenant.unwrap_or(&rec.host));
        match state.dns.get_mut(state.key.as_slice()) {
            Some(last) if t >= *last && t - *last < options.dns_window => {
                service.dns_repeats += 1;
                return;
            }
            Some(last) => *last = t,
            None => {
                if state.dns.len() >= MAX_DNS_KEYS {
                    state.dns.clear();
                }
                state.dns.insert(state.key.as_slice().into(), t);
            }
        }
        state.key.truncate(user_len);
    }
    let target = match tenant {
        None => service,
        Some(t) => {
            if !service.tenants.contains_key(t) && service.tenants.len() >= MAX_TENANTS {
                service.tenants.entry(OTHER_TENANTS.into()).or_default()
            } else if let Some(entry) = service.tenants.get_mut(t) {
                entry
            } else {
                service.tenants.entry(t.into()).or_default()
            }
        }
    };
    let counts = hit.role.counts_as_use();
    let bit = hit.role.bit();
    target.total.add(rec, bit, counts, options.large_upload);
    if let Some(u) = target.users.get_mut(state.key.as_slice()) {
        u.add(rec, bit, counts, options.large_upload);
        return;
    }
    let key: Cow<'_, [u8]> = if state.users >= MAX_USERS {
        Cow::Owned(user_key(IdKind::User, OTHER_USERS))
    } else {
        Cow::Borrowed(state.key.as_slice())
    };
    let entry = target.users.entry(key.as_ref().into()).or_insert_with(|| {
        state.users += 1;
        UserUsage::default()
    });
    entry.add(rec, bit, counts, options.large_upload);
}
