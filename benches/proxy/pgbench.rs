//! Running pgbench (its select-only script, or an application-like one) and
//! reading its summary.

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

/// What each pgbench transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `-S`: one point SELECT.
    SelectOnly,
    /// [`APP_SCRIPT`]: what an application's transaction sends.
    App,
}

/// A transaction as applications and ORMs send it: a session setting, a
/// block, two reads, the commit (five statements, each decided by the
/// shipped policy: session, transaction, read, read, transaction).
pub const APP_SCRIPT: &str = "\\set aid random(1, 100000 * :scale)
\\set bid random(1, :scale)
SET statement_timeout = '30s';
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT bbalance FROM pgbench_branches WHERE bid = :bid;
COMMIT;
";

/// One pgbench invocation: a script, a query mode and a number of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub script: Script,
    pub mode: Mode,
    pub clients: u32,
}

impl Workload {
    pub const fn new(mode: Mode, clients: u32) -> Workload {
        Workload {
            script: Script::SelectOnly,
            mode,
            clients,
        }
    }

    pub const fn app(mode: Mode, clients: u32) -> Workload {
        Workload {
            script: Script::App,
            mode,
            clients,
        }
    }

    /// The mode, with the script when it is not `-S`.
    pub fn label(self) -> &'static str {
        match (self.script, self.mode) {
            (Script::SelectOnly, m) => m.as_str(),
            (Script::App, Mode::Simple) => "app/simple",
            (Script::App, Mode::Extended) => "app/extended",
            (Script::App, Mode::Prepared) => "app/prepared",
        }
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

/// Runs the workload's script for `seconds` against `127.0.0.1:port`
/// (`app_script`: where [`APP_SCRIPT`] is written). Fails if pgbench fails,
/// a client aborts, or a transaction fails.
pub fn run(
    pgbench: &Path,
    port: u16,
    workload: Workload,
    seconds: u64,
    app_script: &Path,
) -> Result<Outcome> {
    let mut command = Command::new(pgbench);
    match workload.script {
        Script::SelectOnly => command.arg("-S"),
        Script::App => command.arg("-f").arg(app_script),
    };
    let out = command
        .args(["-n", "-h", "127.0.0.1", "-U", "postgres"])
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
