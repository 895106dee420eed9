//! Collected samples, their medians, and the printed report: the results
//! table, what classification costs (airlock with it on against airlock
//! with it off), the targets marked PASS/MISS, and the memory measurement.

use crate::idle::IdleMemory;
use crate::pgbench::{Outcome, Workload};

/// Where pgbench connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Direct,
    /// airlock as configured, classifying every statement.
    Airlock,
    /// A second airlock process, identical but for `--classification
    /// false`: everything forwarded unchecked.
    AirlockOff,
    PgBouncer,
}

/// How many targets a row has.
const TARGETS: usize = 4;

impl Target {
    /// The order runs are interleaved in (see [`Target::order`]), and the
    /// index of each in a row.
    pub const ALL: [Target; TARGETS] = [
        Target::Direct,
        Target::Airlock,
        Target::AirlockOff,
        Target::PgBouncer,
    ];

    /// The order of the runs in repeat `repeat`: [`Target::ALL`], with the
    /// two airlock runs swapped every other repeat so that neither always
    /// runs right after the other.
    pub fn order(repeat: usize) -> [Target; TARGETS] {
        let mut order = Target::ALL;
        if repeat % 2 == 1 {
            order.swap(1, 2);
        }
        order
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Airlock => "airlock",
            Target::AirlockOff => "airlock-off",
            Target::PgBouncer => "pgbouncer",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub outcome: Outcome,
    /// The proxy's CPU time per transaction in microseconds (proxies only).
    pub cpu_us_per_tx: Option<f64>,
    /// Which repeat it was: the runs of one repeat ran one after the other,
    /// so their ratios are the least disturbed by the machine's drift.
    pub repeat: usize,
}

/// Every run of one workload against one target.
#[derive(Debug, Default)]
struct Cell {
    samples: Vec<Sample>,
    errors: Vec<String>,
}

impl Cell {
    fn tps(&self) -> Option<f64> {
        median(self.samples.iter().map(|s| s.outcome.tps))
    }

    fn latency_ms(&self) -> Option<f64> {
        median(self.samples.iter().map(|s| s.outcome.latency_ms))
    }

    fn cpu_us_per_tx(&self) -> Option<f64> {
        median(self.samples.iter().filter_map(|s| s.cpu_us_per_tx))
    }
}

/// The targets the results are held against.
pub mod targets {
    /// At 8 clients, airlock's throughput relative to direct, at least.
    pub const MIN_RATIO_TO_DIRECT: f64 = 0.85;
    /// At 1 client, microseconds airlock may add to each round trip.
    pub const MAX_ADDED_US: f64 = 30.0;
    /// Resident memory of airlock holding the idle connections, below.
    pub const MAX_IDLE_RSS_MIB: f64 = 128.0;
    /// With the cache, classification costs no more than 5% of pgbench -S
    /// throughput: airlock's throughput relative to airlock with
    /// classification off, at least.
    pub const MIN_RATIO_TO_UNCLASSIFIED: f64 = 0.95;
}

/// All samples of a benchmark run, by workload and target.
pub struct Results {
    workloads: Vec<Workload>,
    cells: Vec<[Cell; TARGETS]>,
}

impl Results {
    pub fn new(workloads: &[Workload]) -> Results {
        Results {
            workloads: workloads.to_vec(),
            cells: workloads.iter().map(|_| Default::default()).collect(),
        }
    }

    fn cell_mut(&mut self, workload: Workload, target: Target) -> &mut Cell {
        let row = self
            .workloads
            .iter()
            .position(|w| *w == workload)
            .expect("workload of this benchmark");
        &mut self.cells[row][target.index()]
    }

    pub fn record(&mut self, workload: Workload, target: Target, sample: Sample) {
        self.cell_mut(workload, target).samples.push(sample);
    }

    pub fn record_error(&mut self, workload: Workload, target: Target, error: String) {
        self.cell_mut(workload, target).errors.push(error);
    }

    fn rows(&self) -> impl Iterator<Item = (Workload, Row)> + '_ {
        self.workloads
            .iter()
            .zip(&self.cells)
            .map(|(w, cells)| (*w, Row::new(cells)))
    }

    /// Prints the results table and the throughput and latency targets.
    pub fn print(&self) {
        println!();
        println!("Results (median of the repeats)");
        println!(
            "{:<9}{:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "mode",
            "cl",
            "direct",
            "airlock",
            "pgbouncer",
            "al/dir",
            "al/pgb",
            "pgb/dir",
            "al +us",
            "pgb +us",
            "al cpu",
            "pgb cpu"
        );
        for (w, row) in self.rows() {
            let added = |t: Target| {
                if w.clients == 1 {
                    fmt(row.added_us(t), 1, "")
                } else {
                    String::new()
                }
            };
            println!(
                "{:<9}{:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
                w.label(),
                w.clients,
                fmt(row.tps(Target::Direct), 0, ""),
                fmt(row.tps(Target::Airlock), 0, ""),
                fmt(row.tps(Target::PgBouncer), 0, ""),
                fmt(row.ratio(Target::Airlock, Target::Direct), 2, "x"),
                fmt(row.ratio(Target::Airlock, Target::PgBouncer), 2, "x"),
                fmt(row.ratio(Target::PgBouncer, Target::Direct), 2, "x"),
                added(Target::Airlock),
                added(Target::PgBouncer),
                fmt(row.cpu(Target::Airlock), 1, ""),
                fmt(row.cpu(Target::PgBouncer), 1, ""),
            );
        }
        println!(
            "  tps columns: transactions/s without connection time. al = airlock, pgb = PgBouncer.\n  \
             +us: latency the proxy adds per round trip at 1 client (proxy avg latency - direct avg \
             latency, us).\n  cpu: the proxy process's user+system CPU per transaction, us \
             (from /proc/PID/stat, clock-tick resolution)."
        );
        self.print_classification();
        self.print_errors();
        println!();
        println!("Targets");
        for (w, row) in self.rows() {
            let plural = if w.clients == 1 { "" } else { "s" };
            let name = format!("{} client{plural}, {}", w.clients, w.label());
            if w.clients >= 8 {
                let ratio = row.ratio(Target::Airlock, Target::Direct);
                verdict(
                    &format!(
                        "{name}: airlock >= {:.2}x direct",
                        targets::MIN_RATIO_TO_DIRECT
                    ),
                    &fmt(ratio, 2, "x"),
                    ratio.map(|r| r >= targets::MIN_RATIO_TO_DIRECT),
                );
                let ahead = row.ratio(Target::Airlock, Target::PgBouncer);
                verdict(
                    &format!("{name}: airlock ahead of PgBouncer"),
                    &fmt(ahead, 2, "x"),
                    ahead.map(|r| r > 1.0),
                );
            }
            if w.clients == 1 {
                let added = row.added_us(Target::Airlock);
                verdict(
                    &format!(
                        "{name}: airlock adds <= {:.0} us per round trip",
                        targets::MAX_ADDED_US
                    ),
                    &fmt(added, 1, " us"),
                    added.map(|us| us <= targets::MAX_ADDED_US),
                );
            }
            let on_off = row.paired_ratio(Target::Airlock, Target::AirlockOff);
            verdict(
                &format!(
                    "{name}: classifying costs <= {:.0}% (on/off)",
                    (1.0 - targets::MIN_RATIO_TO_UNCLASSIFIED) * 100.0,
                ),
                &fmt(on_off, 3, "x"),
                on_off.map(|r| r >= targets::MIN_RATIO_TO_UNCLASSIFIED),
            );
        }
    }

    /// Prints airlock against airlock with classification off: throughput,
    /// their ratio, and the proxy CPU classification adds per transaction.
    fn print_classification(&self) {
        println!();
        println!("Classification cost (airlock as is against airlock --classification false)");
        println!(
            "{:<9}{:>3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
            "mode", "cl", "airlock", "al-off", "on/off", "paired", "al cpu", "off cpu", "+cpu"
        );
        for (w, row) in self.rows() {
            let on_cpu = row.cpu(Target::Airlock);
            let off_cpu = row.cpu(Target::AirlockOff);
            println!(
                "{:<9}{:>3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
                w.label(),
                w.clients,
                fmt(row.tps(Target::Airlock), 0, ""),
                fmt(row.tps(Target::AirlockOff), 0, ""),
                fmt(row.ratio(Target::Airlock, Target::AirlockOff), 3, "x"),
                fmt(
                    row.paired_ratio(Target::Airlock, Target::AirlockOff),
                    3,
                    "x"
                ),
                fmt(on_cpu, 1, ""),
                fmt(off_cpu, 1, ""),
                fmt(on_cpu.zip(off_cpu).map(|(a, b)| a - b), 1, ""),
            );
        }
        println!(
            "  al-off: a second airlock process with --classification false (no classification, \
             no policy,\n  no read-only backstop), otherwise identical. on/off: median airlock tps / \
             median al-off tps;\n  paired: the median of the ratios within each repeat, where \
             the two ran back to back (the target, >= {:.2}x).\n  +cpu: al cpu - off cpu, the proxy CPU per \
             transaction that classifying adds, us.",
            targets::MIN_RATIO_TO_UNCLASSIFIED
        );
    }

    fn print_errors(&self) {
        let mut first = true;
        for (w, cells) in self.workloads.iter().zip(&self.cells) {
            for (target, cell) in Target::ALL.iter().zip(cells) {
                for e in &cell.errors {
                    if first {
                        println!("\nFailed runs (left out of the medians)");
                        first = false;
                    }
                    println!(
                        "  {} {} clients via {}: {e}",
                        w.label(),
                        w.clients,
                        target.as_str()
                    );
                }
            }
        }
    }
}

/// The medians of one workload's cells.
struct Row {
    samples: [Vec<Sample>; TARGETS],
    tps: [Option<f64>; TARGETS],
    latency_ms: [Option<f64>; TARGETS],
    cpu: [Option<f64>; TARGETS],
}

impl Row {
    fn new(cells: &[Cell; TARGETS]) -> Row {
        Row {
            samples: cells.each_ref().map(|c| c.samples.clone()),
            tps: cells.each_ref().map(Cell::tps),
            latency_ms: cells.each_ref().map(Cell::latency_ms),
            cpu: cells.each_ref().map(Cell::cpu_us_per_tx),
        }
    }

    fn tps(&self, t: Target) -> Option<f64> {
        self.tps[t.index()]
    }

    fn cpu(&self, t: Target) -> Option<f64> {
        self.cpu[t.index()]
    }

    fn ratio(&self, a: Target, b: Target) -> Option<f64> {
        Some(self.tps(a)? / self.tps(b)?)
    }

    /// The median, over the repeats that measured both, of `a`'s throughput
    /// over `b`'s in the same repeat.
    fn paired_ratio(&self, a: Target, b: Target) -> Option<f64> {
        median(self.samples[a.index()].iter().filter_map(|x| {
            let y = self.samples[b.index()]
                .iter()
                .find(|y| y.repeat == x.repeat)?;
            Some(x.outcome.tps / y.outcome.tps)
        }))
    }

    /// Microseconds of average latency `t` adds to a direct connection.
    fn added_us(&self, t: Target) -> Option<f64> {
        let direct = self.latency_ms[Target::Direct.index()]?;
        Some((self.latency_ms[t.index()]? - direct) * 1000.0)
    }
}

/// Prints what the proxies' memory grew by with idle connections, and the
/// airlock memory target.
pub fn print_memory(airlock: &IdleMemory, pgbouncer: Option<&IdleMemory>) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!(
        "Idle connections: {} sessions at ReadyForQuery, each with its own PostgreSQL backend",
        airlock.connections
    );
    println!(
        "  {:<10} {:>12} {:>16} {:>16}",
        "", "idle RSS", "RSS with conns", "per connection"
    );
    let line = |name: &str, m: &IdleMemory| {
        println!(
            "  {:<10} {:>8.1} MiB {:>12.1} MiB {:>12.1} KiB",
            name,
            mib(m.idle_kib),
            mib(m.loaded_kib),
            m.per_connection_kib()
        );
    };
    line("airlock", airlock);
    if let Some(p) = pgbouncer {
        line("pgbouncer", p);
    }
    let total = mib(airlock.loaded_kib);
    verdict(
        &format!(
            "airlock: {} idle connections in < {:.0} MiB",
            airlock.connections,
            targets::MAX_IDLE_RSS_MIB
        ),
        &format!("{total:.1} MiB"),
        Some(total < targets::MAX_IDLE_RSS_MIB),
    );
}

/// Prints one target line; `met` is `None` when there was no measurement.
fn verdict(what: &str, value: &str, met: Option<bool>) {
    let mark = match met {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "MISS (no measurement)",
    };
    println!("  {what:<58} {value:>10}  {mark}");
}

fn fmt(value: Option<f64>, decimals: usize, unit: &str) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}{unit}"),
        None => "-".to_string(),
    }
}

/// The median of `values`; `None` if there are none.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}
