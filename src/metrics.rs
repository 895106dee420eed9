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
    /// Messages decided, by statement kind and decision (see [`KINDS`] and
    /// [`DECISIONS`]); sessions add their own counts in batches.
    pub statements: [[AtomicU64; 3]; 6],
    /// Time from holding a statement to its decision.
    pub hold_wait: Histogram,
    /// Catalog snapshots loaded, and loads that failed.
    pub catalog_loads: AtomicU64,
    pub catalog_load_errors: AtomicU64,
    /// New snapshots asked for that the fingerprint showed were not needed.
    pub catalog_unchanged: AtomicU64,
    /// Times a session waited for a new snapshot or another session's
    /// change of the catalog.
    pub catalog_waits: AtomicU64,
}

/// Row labels of [`Metrics::statements`].
pub const KINDS: [&str; 6] = ["read", "write", "ddl", "transaction", "session", "utility"];
/// Column labels of [`Metrics::statements`].
pub const DECISIONS: [&str; 3] = ["allow", "deny", "hold"];

/// A Prometheus histogram with fixed buckets, in seconds.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        const BOUNDS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];
        Histogram {
            bounds: BOUNDS,
            buckets: BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(self.bounds) {
            if secs <= *bound {
                b.fetch_add(1, Relaxed);
            }
        }
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP airlock_{name} {help}");
        let _ = writeln!(out, "# TYPE airlock_{name} histogram");
        for (b, bound) in self.buckets.iter().zip(self.bounds) {
            let _ = writeln!(
                out,
                "airlock_{name}_bucket{{le=\"{bound}\"}} {}",
                b.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "airlock_{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "airlock_{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "airlock_{name}_count {count}");
    }
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
            "catalog_loads_total",
            "counter",
            "Catalog snapshots of user code loaded (docs/catalog.md).",
            &self.catalog_loads,
        );
        metric(
            "catalog_unchanged_total",
            "counter",
            "New snapshots asked for (after a write that ran user code, a DDL) that the catalog's fingerprint showed were not needed.",
            &self.catalog_unchanged,
        );
        metric(
            "catalog_load_errors_total",
            "counter",
            "Catalog loads that failed (reads that name anything need review meanwhile).",
            &self.catalog_load_errors,
        );
        metric(
            "catalog_waits_total",
            "counter",
            "Times a session waited for a new catalog snapshot or another session's catalog change.",
            &self.catalog_waits,
        );
        metric(
            "cancel_requests_total",
            "counter",
            "CancelRequests received.",
            &self.cancel_requests,
        );
        let _ = writeln!(
            out,
            "# HELP airlock_statements_total Messages decided, by statement kind and decision."
        );
        let _ = writeln!(out, "# TYPE airlock_statements_total counter");
        for (k, row) in KINDS.iter().zip(&self.statements) {
            for (d, c) in DECISIONS.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "airlock_statements_total{{kind=\"{k}\",decision=\"{d}\"}} {}",
                    c.load(Relaxed)
                );
            }
        }
        self.hold_wait.render(
            "hold_wait_seconds",
            "Time from holding a statement to its decision.",
            &mut out,
        );
        out
    }
}
