//! Process-wide counters, rendered in the Prometheus text format by the admin
//! API. Only session-level events are counted here: the per-message data path
//! touches no shared counter.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
pub struct Metrics {
    pub sessions_active: AtomicU64,
    pub sessions_total: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub upstream_connect_errors: AtomicU64,
    pub upstream_lost: AtomicU64,
    pub client_protocol_errors: AtomicU64,
    pub cancel_requests: AtomicU64,
    pub holds_started: AtomicU64,
    pub holds_pending: AtomicU64,
}

/// Keeps `sessions_active` up while it lives.
pub struct ActiveSession(Arc<Metrics>);

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.0.sessions_active.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Counts a new client connection; the guard counts it out again.
    pub fn session_started(self: &Arc<Self>) -> ActiveSession {
        self.sessions_active.fetch_add(1, Relaxed);
        self.sessions_total.fetch_add(1, Relaxed);
        ActiveSession(Arc::clone(self))
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The Prometheus exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        let mut metric = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP airlock_{name} {help}");
            let _ = writeln!(out, "# TYPE airlock_{name} {kind}");
            let _ = writeln!(out, "airlock_{name} {}", v.load(Relaxed));
        };
        metric(
            "sessions_active",
            "gauge",
            "Client connections open now.",
            &self.sessions_active,
        );
        metric(
            "sessions_total",
            "counter",
            "Client connections accepted.",
            &self.sessions_total,
        );
        metric(
            "sessions_refused_total",
            "counter",
            "Client connections refused over max_client_connections.",
            &self.sessions_refused,
        );
        metric(
            "upstream_connect_errors_total",
            "counter",
            "Failed connections to the upstream server.",
            &self.upstream_connect_errors,
        );
        metric(
            "upstream_lost_total",
            "counter",
            "Sessions whose upstream connection ended unexpectedly.",
            &self.upstream_lost,
        );
        metric(
            "client_protocol_errors_total",
            "counter",
            "Sessions closed for a client protocol violation.",
            &self.client_protocol_errors,
        );
        metric(
            "holds_total",
            "counter",
            "Statements held for review.",
            &self.holds_started,
        );
        metric(
            "holds_pending",
            "gauge",
            "Statements held for review now.",
            &self.holds_pending,
        );
        metric(
            "cancel_requests_total",
            "counter",
            "CancelRequests received.",
            &self.cancel_requests,
        );
        out
    }
}
