//! The one HTTP client for upstream calls: hyper's HTTP/1.1 connection driven in the request's
//! own task, over [`connect`](super::connect)'s TCP, proxy tunnel and rustls, with a bounded
//! pool of idle connections.
//!
//! A connection task of its own (reqwest's way) hands the body over one decoded frame at a
//! time, each a task switch: an upstream that streams 150 small events cost 150 switches and as
//! many scans and writes to the caller. Here reading the body polls the connection itself, and
//! [`Body::chunk`] returns every frame that what has arrived decodes to: a burst of events
//! becomes one scan and one write, and a whole answer costs no task switch.
//!
//! hyper does the framing (two `Content-Length`s refused, `chunked` only as the last transfer
//! coding, malformed chunk sizes and short bodies errors). A request goes out again on a new
//! connection only when hyper says none of it was written (a pooled connection the server had
//! closed); a POST that reached the wire is never replayed here.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::connect::{Io, Target};

/// Idle connections kept per upstream, and for how long.
const MAX_IDLE: usize = 1024;
pub(super) const IDLE_FOR: Duration = Duration::from_secs(60);
/// How often idle connections are checked (expired or closed by the server: dropped).
#[cfg(not(test))]
const REAP_EVERY: Duration = Duration::from_secs(15);
/// Short in tests, so that reaping is seen in real time.
#[cfg(test)]
const REAP_EVERY: Duration = Duration::from_millis(20);
/// The most body bytes one [`Body::chunk`] gathers from frames that are already decoded.
const MAX_GATHER: usize = 64 * 1024;
/// Room first made for gathered frames (a burst of a few dozen events), to spare regrowth.
const GATHER_START: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

impl Error {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// One open connection: the sending half and the connection state machine, which only the
/// task that uses it polls.
struct Conn {
    tx: http1::SendRequest<Full<Bytes>>,
    conn: http1::Connection<TokioIo<Io>, Full<Bytes>>,
}

impl Conn {
    /// Poll the connection once without a task to wake: `false` when it has ended (the server
    /// closed it, an error) or cannot take a request.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.conn).poll(&mut cx).is_pending() && self.tx.is_ready()
    }
}

/// One upstream's connections.
pub(super) struct Client {
    pub target: Target,
    connect_timeout: Duration,
    idle: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    conns: Vec<(Conn, Instant)>,
    reaper: bool,
}

impl Client {
    pub fn new(target: Target, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            target,
            connect_timeout,
            idle: Mutex::new(Pool::default()),
        })
    }

    /// Send `request` and wait for the answer's head.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<()>, Body), Error> {
        if let Some(conn) = self.checkout() {
            match exchange(conn, request).await {
                Ok((response, conn)) => return Ok(self.body(response, conn)),
                // The server closed the pooled connection before the request was written.
                Err((Some(unsent), _)) => request = unsent,
                Err((None, e)) => return Err(e.into()),
            }
        }
        let io = self
            .target
            .connect(self.connect_timeout)
            .await
            .map_err(Error::Connect)?;
        let (tx, conn) = http1::handshake(TokioIo::new(io)).await?;
        match exchange(Conn { tx, conn }, request).await {
            Ok((response, conn)) => Ok(self.body(response, conn)),
            Err((_, e)) => Err(e.into()),
        }
    }

    fn body(
        self: &Arc<Self>,
        response: Response<Incoming>,
        conn: Option<Conn>,
    ) -> (Response<()>, Body) {
        let (parts, incoming) = response.into_parts();
        let body = Body {
            incoming,
            conn,
            owner: Arc::downgrade(self),
            ended: false,
            failed: None,
        };
        (Response::from_parts(parts, ()), body)
    }

    fn checkout(&self) -> Option<Conn> {
        let mut pool = self.idle.lock().ok()?;
        while let Some((mut conn, since)) = pool.conns.pop() {
            if since.elapsed() < IDLE_FOR && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    fn give_back(self: &Arc<Self>, conn: Conn) {
        let Ok(mut pool) = self.idle.lock() else {
            return;
        };
        if pool.conns.len() < MAX_IDLE {
            pool.conns.push((conn, Instant::now()));
        }
        if !pool.reaper
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            pool.reaper = true;
            runtime.spawn(reap(Arc::downgrade(self)));
        }
    }

    /// Drop idle connections that expired or that the server closed.
    fn reap(&self) {
        if let Ok(mut pool) = self.idle.lock() {
            pool.conns
                .retain_mut(|(conn, since)| since.elapsed() < IDLE_FOR && conn.usable());
        }
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |p| p.conns.len())
    }
}

/// Reap `client`'s idle connections until the client is gone.
async fn reap(client: Weak<Client>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(client) = client.upgrade() else {
            return;
        };
        client.reap();
    }
}

/// Send `request` on `conn`, polling the connection in this task until the answer's head is
/// in. On failure, the request comes back when none of it was written.
async fn exchange(
    mut conn: Conn,
    request: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, Option<Conn>), (Option<Request<Full<Bytes>>>, hyper::Error)> {
    let mut sent = std::pin::pin!(conn.tx.try_send_request(request));
    let mut open = true;
    let result = poll_fn(|cx| {
        if open && Pin::new(&mut conn.conn).poll(cx).is_ready() {
            open = false;
        }
        sent.as_mut().poll(cx)
    })
    .await;
    match result {
        Ok(response) => Ok((response, open.then_some(conn))),
        Err(mut e) => Err((e.take_message(), e.into_error())),
    }
}

/// An answer's body, read by polling its connection in the reader's task; the connection goes
/// back to the pool when the body has been read to its end.
pub(super) struct Body {
    incoming: Incoming,
    /// `None` once the connection has ended or gone back to the pool.
    conn: Option<Conn>,
    owner: Weak<Client>,
    ended: bool,
    /// An error met after data that was returned first.
    failed: Option<hyper::Error>,
}

impl Body {
    /// Everything the bytes that have arrived decode to (waiting for some if none have), or
    /// `None` at the end of the body. Cancel-safe: what one poll gathers it returns.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, hyper::Error>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        let mut first: Option<Bytes> = None;
        let mut gathered = BytesMut::new();
        // Once a frame is in hand this poll returns Ready whatever follows, so the frames after
        // it are polled without a waker: hyper's body channel would otherwise register this
        // task's waker and wake the task itself for every frame it hands over.
        let mut quiet = Context::from_waker(Waker::noop());
        loop {
            let next = if first.is_none() {
                self.poll_frame(cx)
            } else {
                self.poll_frame(&mut quiet)
            };
            let data = match next {
                Poll::Ready(Ok(Some(data))) => data,
                Poll::Ready(Err(e)) if first.is_none() => return Poll::Ready(Err(e)),
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e);
                    break;
                }
                Poll::Ready(Ok(None)) | Poll::Pending if first.is_some() => break,
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(None)),
                Poll::Pending => return Poll::Pending,
            };
            match &first {
                None => first = Some(data),
                Some(one) => {
                    if gathered.is_empty() {
                        gathered.reserve(GATHER_START.max(one.len() + data.len()));
                        gathered.extend_from_slice(one);
                    }
                    gathered.extend_from_slice(&data);
                }
            }
            if gathered.len() >= MAX_GATHER {
                break;
            }
        }
        Poll::Ready(Ok(if gathered.is_empty() {
            first
        } else {
            Some(gathered.freeze())
        }))
    }

    /// The next data frame, driving the connection so that it decodes one.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, hyper::Error>> {
        if self.ended {
            return Poll::Ready(Ok(None));
        }
        loop {
            if let Some(conn) = self.conn.as_mut()
                && Pin::new(&mut conn.conn).poll(cx).is_ready()
            {
                // Ended (closed, or an error the body reports below): nothing more to drive.
                self.conn = None;
            }
            match Pin::new(&mut self.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Ok(Some(data))),
                    _ => continue, // trailers, an empty frame
                },
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    self.conn = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    self.release(cx);
                    return Poll::Ready(Ok(None));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The body is complete: the connection goes back to the pool if it can take another
    /// request.
    fn release(&mut self, cx: &mut Context<'_>) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if Pin::new(&mut conn.conn).poll(cx).is_pending()
            && conn.tx.is_ready()
            && let Some(owner) = self.owner.upgrade()
        {
            owner.give_back(conn);
        }
    }
}
