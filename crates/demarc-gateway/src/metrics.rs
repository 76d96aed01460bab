//! Prometheus metrics in the text exposition format, kept with atomics and small maps.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency histogram bucket bounds, in seconds.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        if let Some(i) = BOUNDS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
    upstream_errors: Mutex<BTreeMap<String, u64>>,
    detector_hits: Mutex<BTreeMap<String, u64>>,
    blocked: Mutex<BTreeMap<(&'static str, String), u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += by;
    }
}

impl Metrics {
    pub fn request(&self, application: &str, endpoint: &'static str, status: u16, seconds: f64) {
        bump(
            &self.requests,
            (application.to_string(), endpoint, status),
            1,
        );
        let histogram = self
            .latency
            .lock()
            .ok()
            .map(|mut m| m.entry(endpoint).or_default().clone());
        if let Some(h) = histogram {
            h.observe(seconds);
        }
    }

    pub fn upstream_error(&self, upstream: &str) {
        bump(&self.upstream_errors, upstream.to_string(), 1);
    }

    pub fn detector_hits(&self, detector: &str, n: u32) {
        bump(&self.detector_hits, detector.to_string(), u64::from(n));
    }

    pub fn blocked(&self, direction: &'static str, application: &str) {
        bump(&self.blocked, (direction, application.to_string()), 1);
    }

    /// The text exposition; `extra` adds values owned elsewhere (audit queue and counts):
    /// counters where the name ends in `_total`, gauges otherwise.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP demarc_gateway_requests_total Requests by application, endpoint and status."
        );
        let _ = writeln!(out, "# TYPE demarc_gateway_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((app, endpoint, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "demarc_gateway_requests_total{{application=\"{}\",endpoint=\"{endpoint}\",status=\"{status}\"}} {n}",
                    escape(app)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP demarc_gateway_request_duration_seconds Time from request to last byte."
        );
        let _ = writeln!(
            out,
            "# TYPE demarc_gateway_request_duration_seconds histogram"
        );
        if let Ok(m) = self.latency.lock() {
            for (endpoint, h) in m.iter() {
                let mut cumulative = 0;
                for (i, bound) in BOUNDS.iter().enumerate() {
                    cumulative += h.buckets[i].load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "demarc_gateway_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let count = h.count.load(Ordering::Relaxed);
                let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "demarc_gateway_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {count}"
                );
                let _ = writeln!(
                    out,
                    "demarc_gateway_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "demarc_gateway_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {count}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP demarc_gateway_upstream_errors_total Failed upstream attempts."
        );
        let _ = writeln!(out, "# TYPE demarc_gateway_upstream_errors_total counter");
        if let Ok(m) = self.upstream_errors.lock() {
            for (u, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "demarc_gateway_upstream_errors_total{{upstream=\"{}\"}} {n}",
                    escape(u)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP demarc_gateway_detector_hits_total Guard detector hits, input and output."
        );
        let _ = writeln!(out, "# TYPE demarc_gateway_detector_hits_total counter");
        if let Ok(m) = self.detector_hits.lock() {
            for (d, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "demarc_gateway_detector_hits_total{{detector=\"{}\"}} {n}",
                    escape(d)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP demarc_gateway_blocked_total Requests or outputs blocked by policy."
        );
        let _ = writeln!(out, "# TYPE demarc_gateway_blocked_total counter");
        if let Ok(m) = self.blocked.lock() {
            for ((direction, app), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "demarc_gateway_blocked_total{{direction=\"{direction}\",application=\"{}\"}} {n}",
                    escape(app)
                );
            }
        }
        for (name, help, value) in extra {
            // Prometheus' convention: a counter's name ends in `_total`, a gauge's does not.
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("app\"x", "chat_completions", 200, 0.0007);
        m.upstream_error("u1");
        m.detector_hits("pii.email", 2);
        let text = m.render(&[("demarc_gateway_audit_queue", "Queued audit events.", 3.0)]);
        assert!(text.contains(
            "demarc_gateway_requests_total{application=\"app\\\"x\",endpoint=\"chat_completions\",status=\"200\"} 1"
        ));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.0005\"} 0"));
        assert!(text.contains("demarc_gateway_detector_hits_total{detector=\"pii.email\"} 2"));
        assert!(text.contains("demarc_gateway_audit_queue 3"));
    }
}
