//! Running `pgbench -n -S` and reading its summary.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The database the benchmark tables live in.
pub const DATABASE: &str = "pgbench";

/// pgbench's `-M` query modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Simple,
    Extended,
    Prepared,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Simple => "simple",
            Mode::Extended => "extended",
            Mode::Prepared => "prepared",
        }
    }
}

/// One pgbench invocation: a query mode and a number of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub mode: Mode,
    pub clients: u32,
}

impl Workload {
    pub const fn new(mode: Mode, clients: u32) -> Workload {
        Workload { mode, clients }
    }

    /// pgbench threads: one per four clients, as the reference runs used
    /// (`-c 8 -j 2`).
    fn threads(self) -> u32 {
        self.clients.div_ceil(4)
    }
}

/// The summary of one run.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    /// Average transaction latency in milliseconds.
    pub latency_ms: f64,
    /// Transactions completed.
    pub transactions: u64,
}

/// Runs the built-in select-only script (`-S`) for `seconds` against
/// `127.0.0.1:port`. Fails if pgbench fails, a client aborts, or a
/// transaction fails.
pub fn run(pgbench: &Path, port: u16, workload: Workload, seconds: u64) -> Result<Outcome> {
    let out = Command::new(pgbench)
        .args(["-n", "-S", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(port.to_string())
        .arg("-M")
        .arg(workload.mode.as_str())
        .arg("-c")
        .arg(workload.clients.to_string())
        .arg("-j")
        .arg(workload.threads().to_string())
        .arg("-T")
        .arg(seconds.to_string())
        .arg(DATABASE)
        .stdin(Stdio::null())
        .output()
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench exited with {}: {}",
            out.status,
            last_lines(&String::from_utf8_lossy(&out.stderr), 3)
        );
    }
    parse(&stdout).with_context(|| format!("reading pgbench output:\n{stdout}"))
}

/// Initializes the pgbench tables at `scale` in [`DATABASE`] on `port`.
pub fn initialize(pgbench: &Path, port: u16, scale: u32) -> Result<()> {
    let out = Command::new(pgbench)
        .args(["-i", "-q", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(port.to_string())
        .arg("-s")
        .arg(scale.to_string())
        .arg(DATABASE)
        .stdin(Stdio::null())
        .output()
        .context("running pgbench -i")?;
    if !out.status.success() {
        bail!(
            "pgbench -i failed: {}",
            last_lines(&String::from_utf8_lossy(&out.stderr), 5)
        );
    }
    Ok(())
}

fn parse(stdout: &str) -> Result<Outcome> {
    let value = |prefix: &str| -> Option<&str> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
    };
    // With -T the count stands alone; with -t it reads "done/planned".
    let transactions = value("number of transactions actually processed:")
        .and_then(|v| v.split('/').next()?.parse::<u64>().ok())
        .context("no transaction count")?;
    let failed = value("number of failed transactions:")
        .map_or(Ok(0), str::parse::<u64>)
        .context("bad failed transaction count")?;
    if failed > 0 {
        bail!("{failed} transactions failed");
    }
    let latency_ms = value("latency average =")
        .and_then(|v| v.parse().ok())
        .context("no average latency")?;
    let tps = stdout
        .lines()
        .filter(|l| l.contains("without initial connection time"))
        .find_map(|l| {
            l.strip_prefix("tps =")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no tps line")?;
    Ok(Outcome {
        tps,
        latency_ms,
        transactions,
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
