//! A lean HTTP/1.1 client for model API calls.
//!
//! The general client (reqwest over hyper) runs each connection in its own task and hands the
//! body over one decoded chunk at a time, so an upstream that streams 150 small events costs
//! about 150 task switches and as many writes to the caller. This client reads the socket in
//! the request's own task, 16 KiB at a time, and returns everything one read decoded: a burst
//! of events becomes one scan and one write, and a whole answer costs no task switch at all. It
//! speaks only what the gateway needs (one request per connection at a time, `Content-Length`,
//! chunked or close-delimited bodies, keep-alive with an idle pool) over TCP or rustls, and is
//! used only where no HTTP proxy is configured.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Bytes asked of the socket per read.
const READ_BYTES: usize = 16 * 1024;
/// The largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest chunk-size line, and all trailers together, accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Idle connections kept per upstream, and for how long.
const MAX_IDLE: usize = 1024;
const IDLE_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// Closed or reset before any byte of the response.
    #[error("connection closed before the response began")]
    Closed,
    #[error("connection closed before the body was complete")]
    Cut,
}

impl Error {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// Where requests go: parsed once from the upstream's base URL.
struct Target {
    host: String,
    port: u16,
    /// The base URL's path, without a trailing slash; request routes follow it.
    base_path: String,
    /// The `Host` header value (with the port when it is not the scheme's default).
    authority: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// One upstream's connections.
pub struct Client {
    target: Target,
    connect_timeout: Duration,
    idle: Mutex<Vec<(Io, Instant)>>,
}

impl Client {
    /// A client for `base_url`'s scheme, host and port, trusting `extra_roots` besides the
    /// public roots; `None` for a URL it cannot serve.
    pub fn new(
        base_url: &str,
        connect_timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
    ) -> Option<Arc<Self>> {
        let url = reqwest::Url::parse(base_url).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default()?;
        let tls = match url.scheme() {
            "http" => None,
            "https" => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string()).ok()?;
                Some((
                    tokio_rustls::TlsConnector::from(tls_config(extra_roots)?),
                    name,
                ))
            }
            _ => return None,
        };
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_string(),
        };
        Some(Arc::new(Self {
            target: Target {
                host: host.to_string(),
                port,
                base_path: url.path().trim_end_matches('/').to_string(),
                authority,
                tls,
            },
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// Send one request to `route` (path and query after the base URL's path; its caller
    /// encodes it) and read the response head. A pooled connection that turns out to be closed
    /// before any byte of the response is replaced by a new one, once.
    pub async fn send(
        self: &Arc<Self>,
        method: &str,
        route: &str,
        headers: &[(&str, &HeaderValue)],
        body: &[u8],
        stream: bool,
    ) -> Result<Response, Error> {
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(method.as_bytes());
        request.push(b' ');
        request.extend_from_slice(self.target.base_path.as_bytes());
        request.extend_from_slice(route.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(self.target.authority.as_bytes());
        request.extend_from_slice(if stream {
            b"\r\naccept: text/event-stream\r\ncontent-length: ".as_slice()
        } else {
            b"\r\naccept: application/json\r\ncontent-length: ".as_slice()
        });
        request.extend_from_slice(body.len().to_string().as_bytes());
        for (name, value) in headers {
            request.extend_from_slice(b"\r\n");
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
        }
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);

        if let Some(io) = self.checkout() {
            match self.exchange(io, &request).await {
                Err(Error::Closed) => {} // stale: the server closed it while it was idle
                other => return other,
            }
        }
        let io = self.connect().await?;
        self.exchange(io, &request).await
    }

    async fn exchange(self: &Arc<Self>, mut io: Io, request: &[u8]) -> Result<Response, Error> {
        let written = async {
            io.write_all(request).await?;
            io.flush().await
        };
        // A pooled connection the server closed while it was idle fails here or on the first
        // read: the request was not taken, so it may go out again on a new connection.
        written.await.map_err(|_| Error::Closed)?;
        let mut buf = Vec::with_capacity(READ_BYTES);
        loop {
            let Some(head) = parse_head(&buf)? else {
                match read_more(&mut io, &mut buf, MAX_HEAD_BYTES).await {
                    Ok(0) | Err(_) if buf.is_empty() => return Err(Error::Closed),
                    Ok(0) => return Err(Error::Malformed("connection closed inside the head")),
                    Err(_) if buf.len() >= MAX_HEAD_BYTES => {
                        return Err(Error::Malformed("response head too large"));
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => continue,
                }
            };
            buf.drain(..head.len);
            if head.status.is_informational() {
                continue; // 100 Continue, 103 Early Hints: the real head follows
            }
            return Ok(Response {
                status: head.status,
                headers: head.headers,
                body: Body {
                    io: Some(io),
                    buf,
                    framing: head.framing,
                    reusable: head.reusable,
                    owner: Arc::clone(self),
                },
            });
        }
    }

    async fn connect(&self) -> Result<Io, Error> {
        let target = &self.target;
        let connect = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
            tcp.set_nodelay(true)?;
            match &target.tls {
                None => Ok(Io::Plain(tcp)),
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), tcp).await?;
                    Ok(Io::Tls(Box::new(tls)))
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(result) => result.map_err(Error::Connect),
            Err(_) => Err(Error::Connect(std::io::ErrorKind::TimedOut.into())),
        }
    }

    fn checkout(&self) -> Option<Io> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((io, since)) = idle.pop() {
            if since.elapsed() < IDLE_FOR {
                return Some(io);
            }
        }
        None
    }

    fn give_back(&self, io: Io) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push((io, Instant::now()));
            }
        }
    }
}

/// The roots the general client trusts too (Mozilla's, through `webpki-roots`), and any the
/// upstream adds. The common case, no additions, is built once.
fn tls_config(extra_roots: &[CertificateDer<'static>]) -> Option<Arc<rustls::ClientConfig>> {
    fn build(extra_roots: &[CertificateDer<'static>]) -> Option<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots.add(cert.clone()).ok()?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Some(Arc::new(config))
    }
    static PUBLIC: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    if extra_roots.is_empty() {
        PUBLIC.get_or_init(|| build(&[])).clone()
    } else {
        build(extra_roots)
    }
}

/// A response whose head has arrived.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// The rest of a response: decoded body bytes as they arrive.
pub struct Body {
    /// `None` once the body is complete (the connection went back to the pool or was closed).
    io: Option<Io>,
    /// Bytes read but not yet decoded.
    buf: Vec<u8>,
    framing: Framing,
    reusable: bool,
    owner: Arc<Client>,
}

impl Body {
    /// Everything decoded from what has arrived (reading once if nothing has), or `None` at the
    /// end of the body. Cancel-safe: state changes only after a read completes.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let mut out = Vec::new();
        loop {
            let done = self.framing.decode(&mut self.buf, &mut out)?;
            if done {
                if let Some(io) = self.io.take() {
                    if self.reusable && self.buf.is_empty() {
                        self.owner.give_back(io);
                    }
                }
            }
            if !out.is_empty() {
                if self.buf.is_empty() {
                    // A stream waiting for its next event holds no read buffer.
                    self.buf = Vec::new();
                }
                return Ok(Some(Bytes::from(out)));
            }
            let Some(io) = self.io.as_mut() else {
                return Ok(None);
            };
            if read_more(io, &mut self.buf, READ_BYTES + MAX_TRAILER_BYTES).await? == 0 {
                self.io = None;
                return match self.framing {
                    Framing::Close => Ok(None),
                    _ => Err(Error::Cut),
                };
            }
        }
    }
}

/// Read once into the spare room of `buf` (at most `limit` bytes buffered); 0 means the peer
/// closed the connection.
async fn read_more(io: &mut Io, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    let room = READ_BYTES.min(limit.saturating_sub(buf.len()));
    if room == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "response line too long",
        ));
    }
    buf.reserve(room);
    io.read_buf(buf).await
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// A response head, parsed.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    reusable: bool,
    /// Its length in bytes, blank line included.
    len: usize,
}

/// The head at the start of `buf`, or `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Error::Malformed("invalid response head")),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Error::Malformed("invalid status"))?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Error::Malformed("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| Error::Malformed("invalid header value"))?;
        headers.append(name, value);
    }
    let framing = framing(status, &headers)?;
    let reusable = parsed.version == Some(1)
        && !matches!(framing, Framing::Close)
        && !has_token(&headers, "connection", "close");
    Ok(Some(Head {
        status,
        headers,
        framing,
        reusable,
        len,
    }))
}

/// Decode a whole response from `wire` as if it arrived `piece` bytes at a time: its status,
/// its body, and whether the body was complete. The read path without sockets, for fuzzing.
pub fn decode_response(wire: &[u8], piece: usize) -> Result<(StatusCode, Vec<u8>, bool), Error> {
    let mut buf = Vec::new();
    let mut pieces = wire.chunks(piece.max(1));
    let head = loop {
        match parse_head(&buf)? {
            Some(head) if head.status.is_informational() => {
                buf.drain(..head.len);
            }
            Some(head) => break head,
            None if buf.len() >= MAX_HEAD_BYTES => {
                return Err(Error::Malformed("response head too large"));
            }
            None => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return Err(Error::Closed),
            },
        }
    };
    buf.drain(..head.len);
    let mut framing = head.framing;
    let mut body = Vec::new();
    let mut done = framing.decode(&mut buf, &mut body)?;
    for p in pieces {
        if done {
            break;
        }
        buf.extend_from_slice(p);
        done = framing.decode(&mut buf, &mut body)?;
    }
    Ok((head.status, body, done))
}

fn framing(status: StatusCode, headers: &HeaderMap) -> Result<Framing, Error> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    if headers.contains_key("transfer-encoding") {
        return if has_token(headers, "transfer-encoding", "chunked") {
            Ok(Framing::Chunked(Chunked::Size))
        } else {
            Ok(Framing::Close)
        };
    }
    match headers.get("content-length") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Framing::Length)
            .ok_or(Error::Malformed("invalid content-length")),
        None => Ok(Framing::Close),
    }
}

/// How the body's end is known.
#[derive(Debug)]
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunked),
    /// Until the server closes the connection.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    /// Expecting the line break after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one (this many bytes seen so far).
    Trailers(usize),
    Done,
}

impl Framing {
    /// Move decoded body bytes from `buf` to `out`; true once the body is complete.
    fn decode(&mut self, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<bool, Error> {
        match self {
            Self::Close => {
                out.append(buf);
                Ok(false)
            }
            Self::Length(left) => {
                let take = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                out.extend(buf.drain(..take));
                *left -= take as u64;
                Ok(*left == 0)
            }
            Self::Chunked(state) => {
                let used = decode_chunked(state, buf, out)?;
                buf.drain(..used);
                Ok(*state == Chunked::Done)
            }
        }
    }
}

/// Decode as much of a chunked body as `input` holds; returns how many bytes were used.
fn decode_chunked(state: &mut Chunked, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
    let mut at = 0;
    loop {
        let rest = &input[at..];
        match *state {
            Chunked::Done => return Ok(at),
            Chunked::Size => {
                let Some(end) = memchr::memchr(b'\n', rest) else {
                    if rest.len() > MAX_CHUNK_LINE {
                        return Err(Error::Malformed("chunk size line too long"));
                    }
                    return Ok(at);
                };
                if end > MAX_CHUNK_LINE {
                    return Err(Error::Malformed("chunk size line too long"));
                }
                let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
                let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(digits)
                    .ok()
                    .map(str::trim)
                    .filter(|d| !d.is_empty() && d.len() <= 15)
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .ok_or(Error::Malformed("invalid chunk size"))?;
                *state = if size == 0 {
                    Chunked::Trailers(0)
                } else {
                    Chunked::Data(size)
                };
                at += end + 1;
            }
            Chunked::Data(left) => {
                if rest.is_empty() {
                    return Ok(at);
                }
                let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                out.extend_from_slice(&rest[..take]);
                at += take;
                *state = match left - take as u64 {
                    0 => Chunked::DataEnd,
                    left => Chunked::Data(left),
                };
            }
            Chunked::DataEnd => match rest {
                [] | [b'\r'] => return Ok(at),
                [b'\r', b'\n', ..] => {
                    at += 2;
                    *state = Chunked::Size;
                }
                [b'\n', ..] => {
                    at += 1;
                    *state = Chunked::Size;
                }
                _ => return Err(Error::Malformed("chunk data longer than its size")),
            },
            Chunked::Trailers(seen) => {
                let Some(end) = memchr::memchr(b'\n', rest) else {
                    if seen + rest.len() > MAX_TRAILER_BYTES {
                        return Err(Error::Malformed("trailers too large"));
                    }
                    return Ok(at);
                };
                let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
                at += end + 1;
                *state = if line.is_empty() {
                    Chunked::Done
                } else if seen + end + 1 > MAX_TRAILER_BYTES {
                    return Err(Error::Malformed("trailers too large"));
                } else {
                    Chunked::Trailers(seen + end + 1)
                };
            }
        }
    }
}

/// A connection, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A loopback HTTP/1.1 server with canned answers, plain or TLS, for this module's tests and
/// the upstream tests.
#[cfg(test)]
pub(crate) mod test_server {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    pub struct Server {
        pub url: String,
        pub connections: Arc<AtomicUsize>,
        /// The request heads received, in order.
        pub heads: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        pub fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    fn acceptor() -> tokio_rustls::TlsAcceptor {
        let certs = CertificateDer::pem_file_iter(format!("{FIXTURES}/test-upstream.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/test-upstream.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Answer each request with the next canned answer. An answer that ends in `CLOSE` is sent
    /// without it and the connection is then closed.
    pub async fn serve(answers: Vec<&'static [u8]>, tls: bool) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/v1", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let (count, seen) = (connections.clone(), heads.clone());
        let tls = tls.then(acceptor);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (answers, seen, tls) = (answers.clone(), seen.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(socket, answers, seen).await,
                        Some(tls) => {
                            if let Ok(socket) = tls.accept(socket).await {
                                answer(socket, answers, seen).await;
                            }
                        }
                    }
                });
            }
        });
        Server {
            url,
            connections,
            heads,
        }
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut socket: S,
        answers: Arc<Mutex<VecDeque<&'static [u8]>>>,
        seen: Arc<Mutex<Vec<String>>>,
    ) {
        let mut buf = Vec::new();
        let mut piece = [0u8; 4096];
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match socket.read(&mut piece).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&piece[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < head_end + length {
                let n = socket.read(&mut piece).await.unwrap();
                buf.extend_from_slice(&piece[..n]);
            }
            buf.drain(..head_end + length);
            seen.lock().unwrap().push(head);
            let Some(answer) = answers.lock().unwrap().pop_front() else {
                return;
            };
            match answer.strip_suffix(b"CLOSE") {
                Some(answer) => {
                    socket.write_all(answer).await.unwrap();
                    let _ = socket.shutdown().await;
                    return;
                }
                None => socket.write_all(answer).await.unwrap(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{FIXTURES, serve};
    use super::*;
    use proptest::prelude::*;

    fn decode_all(framing: &mut Framing, pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), Error> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut done = false;
        for piece in pieces {
            buf.extend_from_slice(piece);
            done = framing.decode(&mut buf, &mut out)?;
        }
        Ok((out, done))
    }

    fn chunked(wire: &[u8]) -> Result<(Vec<u8>, bool), Error> {
        decode_all(&mut Framing::Chunked(Chunked::Size), &[wire])
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let wire = b"5;name=v\r\nhello\r\n1\r\n \r\n6\nworld!\n0\r\nx-trailer: 1\r\n\r\n";
        let (out, done) = chunked(wire).unwrap();
        assert_eq!(out, b"hello world!");
        assert!(done);
    }

    #[test]
    fn chunked_body_errors() {
        for (wire, what) in [
            (&b"zz\r\n"[..], "invalid chunk size"),
            (b"\r\n", "invalid chunk size"),
            (b"2\r\nabc\r\n", "chunk data longer than its size"),
            (b"ffffffffffffffffff\r\n", "invalid chunk size"),
        ] {
            match chunked(wire) {
                Err(Error::Malformed(m)) => assert_eq!(m, what, "{wire:?}"),
                other => panic!("{wire:?}: {other:?}"),
            }
        }
        let long = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert!(matches!(chunked(&long), Err(Error::Malformed(_))));
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"x: y\r\n".as_slice(), 4000).flatten());
        assert!(matches!(chunked(&trailers), Err(Error::Malformed(_))));
    }

    #[test]
    fn length_and_close_framing() {
        let mut f = Framing::Length(5);
        let (out, done) = decode_all(&mut f, &[b"he", b"llo"]).unwrap();
        assert_eq!((out.as_slice(), done), (&b"hello"[..], true));
        let mut f = Framing::Close;
        let (out, done) = decode_all(&mut f, &[b"a", b"b"]).unwrap();
        assert_eq!((out.as_slice(), done), (&b"ab"[..], false));
    }

    #[test]
    fn framing_from_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "transfer-encoding",
            HeaderValue::from_static("gzip, Chunked"),
        );
        h.insert("content-length", HeaderValue::from_static("3"));
        assert!(matches!(
            framing(StatusCode::OK, &h),
            Ok(Framing::Chunked(_))
        ));
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("x"));
        assert!(framing(StatusCode::OK, &h).is_err());
        assert!(matches!(
            framing(StatusCode::OK, &HeaderMap::new()),
            Ok(Framing::Close)
        ));
        assert!(matches!(
            framing(StatusCode::NO_CONTENT, &HeaderMap::new()),
            Ok(Framing::Length(0))
        ));
    }

    const CHUNKED_OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndata: 1\r\n2\r\n\n\n\r\n0\r\n\r\n";

    async fn body_of(response: Response) -> Result<Vec<u8>, Error> {
        let mut body = response.body;
        let mut all = Vec::new();
        while let Some(piece) = body.chunk().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    async fn post(client: &Arc<Client>) -> Result<Response, Error> {
        let key = HeaderValue::from_static("Bearer upstream-key");
        client
            .send(
                "POST",
                "/chat/completions?x=1",
                &[("authorization", &key)],
                b"{}",
                true,
            )
            .await
    }

    #[tokio::test]
    async fn keep_alive_connections_are_reused_and_requests_are_well_formed() {
        let server = serve(vec![CHUNKED_OK, CHUNKED_OK], false).await;
        let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
        for _ in 0..2 {
            let response = post(&client).await.unwrap();
            assert_eq!(response.status, StatusCode::OK);
            assert_eq!(response.headers["content-type"], "text/event-stream");
            assert_eq!(body_of(response).await.unwrap(), b"data: 1\n\n");
        }
        assert_eq!(server.connections(), 1, "one pooled connection");
        let head = server.heads.lock().unwrap()[0].clone();
        let authority = server
            .url
            .trim_start_matches("http://")
            .trim_end_matches("/v1");
        assert!(
            head.starts_with("POST /v1/chat/completions?x=1 HTTP/1.1\r\n"),
            "{head}"
        );
        for line in [
            format!("host: {authority}"),
            "content-length: 2".into(),
            "authorization: Bearer upstream-key".into(),
        ] {
            assert!(head.contains(&line), "{line} in {head}");
        }
    }

    #[tokio::test]
    async fn a_pooled_connection_closed_by_the_server_is_replaced() {
        // The server closes after the first answer without saying so (an idle timeout).
        let first: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokCLOSE";
        let server = serve(vec![first, CHUNKED_OK], false).await;
        let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
        assert_eq!(body_of(post(&client).await.unwrap()).await.unwrap(), b"ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = post(&client).await.unwrap();
        assert_eq!(body_of(again).await.unwrap(), b"data: 1\n\n");
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn informational_heads_are_skipped_and_close_delimited_bodies_end_at_close() {
        let answer: &'static [u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nretry-after: 2\r\n\r\nlater";
        let server = serve(vec![answer, b"CLOSE"], false).await;
        let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
        let server2 = serve(vec![b"HTTP/1.1 200 OK\r\n\r\nuntil closeCLOSE"], false).await;
        let response = post(&client).await.unwrap();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers["retry-after"], "2");
        drop(response); // no framing: the body runs to a close that never comes
        let client2 = Client::new(&server2.url, Duration::from_secs(1), &[]).unwrap();
        assert_eq!(
            body_of(post(&client2).await.unwrap()).await.unwrap(),
            b"until close"
        );
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        for (answer, expect) in [
            (&b"NOT HTTP\r\n\r\n"[..], "invalid response head"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-len",
                "connection closed inside the head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
                "invalid content-length",
            ),
        ] {
            let closing: &'static [u8] = Box::leak([answer, b"CLOSE"].concat().into_boxed_slice());
            let server = serve(vec![closing], false).await;
            let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
            match post(&client).await {
                Err(Error::Malformed(m)) => assert_eq!(m, expect),
                Err(e) => panic!("{expect}: {e}"),
                Ok(r) => panic!("{expect}: got {}", r.status),
            }
        }
        // A chunked body cut before its last chunk.
        let cut: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelCLOSE";
        let server = serve(vec![cut], false).await;
        let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
        assert!(matches!(
            body_of(post(&client).await.unwrap()).await,
            Err(Error::Cut)
        ));
        // Nobody listening.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let closed = format!("http://{}/v1", socket.local_addr().unwrap());
        let client = Client::new(&closed, Duration::from_secs(1), &[]).unwrap();
        assert!(post(&client).await.is_err_and(|e| e.is_connect()));
    }

    #[tokio::test]
    async fn a_body_dropped_midway_is_not_pooled() {
        let endless: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndata: 1\r\n";
        let server = serve(vec![endless, CHUNKED_OK], false).await;
        let client = Client::new(&server.url, Duration::from_secs(1), &[]).unwrap();
        let mut body = post(&client).await.unwrap().body;
        assert_eq!(body.chunk().await.unwrap().unwrap().as_ref(), b"data: 1");
        drop(body);
        assert_eq!(
            body_of(post(&client).await.unwrap()).await.unwrap(),
            b"data: 1\n\n"
        );
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn tls_with_a_private_ca_and_keep_alive() {
        use rustls::pki_types::pem::PemObject;
        let ca = CertificateDer::from_pem_file(format!("{FIXTURES}/test-ca.crt")).unwrap();
        let server = serve(vec![CHUNKED_OK, CHUNKED_OK], true).await;
        let client = Client::new(&server.url, Duration::from_secs(2), &[ca]).unwrap();
        for _ in 0..2 {
            let response = post(&client).await.unwrap();
            assert_eq!(body_of(response).await.unwrap(), b"data: 1\n\n");
        }
        assert_eq!(server.connections(), 1);
        // Without the private CA the certificate is not trusted.
        let untrusting = Client::new(&server.url, Duration::from_secs(2), &[]).unwrap();
        match post(&untrusting).await {
            Err(e) => assert!(
                e.is_connect() && e.to_string().contains("certificate"),
                "{e}"
            ),
            Ok(_) => panic!("an unknown CA was trusted"),
        }
    }

    #[test]
    fn urls_it_cannot_serve() {
        assert!(Client::new("ftp://h/v1", Duration::from_secs(1), &[]).is_none());
        assert!(Client::new("not a url", Duration::from_secs(1), &[]).is_none());
        let c = Client::new("https://example.com:8443/v1", Duration::from_secs(1), &[]).unwrap();
        assert_eq!(c.target.authority, "example.com:8443");
        let c = Client::new("http://[::1]/v1", Duration::from_secs(1), &[]).unwrap();
        assert_eq!((c.target.host.as_str(), c.target.port), ("::1", 80));
    }

    fn encode_chunked(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = Vec::new();
        for p in parts.iter().filter(|p| !p.is_empty()) {
            wire.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            wire.extend_from_slice(p);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        wire
    }

    proptest! {
        /// However the wire is split into reads, the decoded body is the same and ends once.
        #[test]
        fn chunked_decoding_does_not_depend_on_reads(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let wire = encode_chunked(&parts);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for p in points { pieces.push(&wire[last..p]); last = p; }
            pieces.push(&wire[last..]);
            let (out, done) = decode_all(&mut Framing::Chunked(Chunked::Size), &pieces).unwrap();
            prop_assert!(done);
            prop_assert_eq!(out, parts.concat());
        }

        /// A whole response decodes the same whatever size its reads have.
        #[test]
        fn responses_decode_the_same_in_any_read_size(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
            piece in 1usize..64,
        ) {
            let mut wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            wire.extend(encode_chunked(&parts));
            let (status, body, done) = decode_response(&wire, piece).unwrap();
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert!(done);
            prop_assert_eq!(body, parts.concat());
        }

        /// Arbitrary bytes never panic, and buffered input stays within the line limits.
        #[test]
        fn chunked_decoding_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut state = Chunked::Size;
            let mut out = Vec::new();
            if let Ok(used) = decode_chunked(&mut state, &bytes, &mut out) {
                prop_assert!(used <= bytes.len());
                prop_assert!(out.len() <= bytes.len());
            }
        }
    }
}
