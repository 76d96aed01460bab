//! Relaying a streamed answer: upstream chunks are parsed into events, every event goes through
//! the [`StreamFilter`], bursts are coalesced into one write, and the audit event is written when
//! the stream ends, however it ends (the client leaving included).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

use crate::audit::Slot;
use crate::context::Ctx;
use crate::gateway::{Gateway, with_request_id};
use crate::output::stream::{StreamEnd, StreamFilter};
use crate::policy::{Policy, Vault};
use crate::sse;
use crate::upstream;

/// Upstream chunks that are already waiting and get handled (and written) together. Each
/// chunk is already all that one read of the connection decoded (see `upstream::Reply::chunk`).
const MAX_COALESCED: usize = 8;

impl Gateway {
    /// A streamed answer: every event goes through the stream filter; the audit event is
    /// written when the stream ends, however it ends.
    pub(crate) fn stream(
        self: Arc<Self>,
        ctx: Ctx,
        slot: Slot,
        policy: Arc<dyn Policy>,
        vault: Arc<Vault>,
        answer: upstream::Answer,
    ) -> Response {
        let request_id = ctx.request_id.clone();
        let endpoint = ctx.endpoint;
        let state = StreamState {
            gateway: self,
            finish: Some((ctx, slot)),
            upstream: answer.response,
            deadline: answer.deadline,
            parser: sse::Parser::new(),
            events: Vec::new(),
            filter: StreamFilter::new(endpoint, policy, vault),
            pending: Vec::new(),
            error: None,
            done: false,
        };
        let body = futures_util::stream::unfold(state, StreamState::next);
        let mut response = Response::new(Body::from_stream(body));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        with_request_id(response, &request_id)
    }
}

struct StreamState {
    gateway: Arc<Gateway>,
    /// Taken when the audit event is written; still here on drop means the client left.
    finish: Option<(Ctx, Slot)>,
    upstream: upstream::Reply,
    deadline: Instant,
    parser: sse::Parser,
    events: Vec<sse::Event>,
    filter: StreamFilter,
    pending: Vec<u8>,
    error: Option<&'static str>,
    done: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        use futures_util::FutureExt;
        loop {
            if !self.pending.is_empty() {
                let chunk = Bytes::from(std::mem::take(&mut self.pending));
                return Some((Ok(chunk), self));
            }
            if self.done {
                self.complete();
                return None;
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.upstream.chunk()).await {
                Err(_) => self.end_early(
                    "upstream_timeout",
                    "upstream did not finish the stream in time",
                ),
                Ok(item) => self.on_item(item),
            }
            // Take whatever else has already arrived, so that one scan and one write carry it all.
            // A bounded number, so a continuously streaming upstream still gets its text
            // through at once rather than at the end.
            for _ in 0..MAX_COALESCED {
                if self.done {
                    break;
                }
                match self.upstream.chunk().now_or_never() {
                    Some(item) => self.on_item(item),
                    None => break,
                }
            }
            if !self.done
                && let Err(end) = self.filter.flush_held(&mut self.pending)
            {
                self.stop(end);
            }
        }
    }

    fn on_item(&mut self, item: Result<Option<Bytes>, upstream::BodyCut>) {
        match item {
            Ok(Some(bytes)) => self.on_bytes(&bytes),
            Err(upstream::BodyCut) => {
                self.end_early("upstream_cut", "upstream broke off the stream")
            }
            Ok(None) => {
                let incomplete = self.parser.finish();
                if incomplete || !self.filter.saw_done {
                    self.end_early(
                        "upstream_cut",
                        "upstream ended the stream before it was complete",
                    );
                } else {
                    self.done = true;
                }
            }
        }
    }

    fn on_bytes(&mut self, bytes: &[u8]) {
        self.events.clear();
        if let Err(e) = self.parser.push(bytes, &mut self.events) {
            let message = e.to_string();
            self.filter.error_event_with(
                "upstream_malformed",
                "upstream_error",
                &message,
                &mut self.pending,
            );
            self.error = Some("upstream_malformed");
            self.done = true;
            // Events completed before the bad bytes were already handled below in earlier calls;
            // those parsed in this call are dropped with the rest of the stream.
            return;
        }
        let events = std::mem::take(&mut self.events);
        for event in &events {
            if let Err(end) = self.filter.on_event(event, &mut self.pending) {
                self.stop(end);
                break;
            }
            if self.filter.saw_done {
                self.done = true;
                break;
            }
        }
        self.events = events;
    }

    /// The filter ended the stream (blocked output, malformed upstream event).
    fn stop(&mut self, end: StreamEnd) {
        self.filter.error_event(&end, &mut self.pending);
        self.error = Some(match end {
            StreamEnd::Blocked(_) => "output_blocked",
            StreamEnd::Malformed(_) => "upstream_malformed",
        });
        self.done = true;
    }

    fn end_early(&mut self, code: &'static str, message: &str) {
        // What the filter still holds back passed the policy so far: the caller gets it before
        // the error, as a client of the upstream itself would have.
        if let Err(end) = self.filter.finish_open(&mut self.pending) {
            self.stop(end);
            return;
        }
        self.filter
            .error_event_with(code, "upstream_error", message, &mut self.pending);
        self.error = Some(code);
        self.done = true;
    }

    fn complete(&mut self) {
        if let Some((mut ctx, slot)) = self.finish.take() {
            ctx.usage = self.filter.usage.unwrap_or_default();
            ctx.verdicts
                .absorb(std::mem::take(&mut self.filter.verdicts));
            self.gateway.finish(ctx, slot, 200, self.error);
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // The client went away before the end: the upstream request is dropped with `self`
        // (which cancels it), and the audit event says so.
        if let Some((mut ctx, slot)) = self.finish.take() {
            ctx.usage = self.filter.usage.unwrap_or_default();
            ctx.verdicts
                .absorb(std::mem::take(&mut self.filter.verdicts));
            self.gateway.finish(ctx, slot, 499, Some("client_closed"));
        }
    }
}
