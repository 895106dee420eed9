//! `cargo bench --bench proxy`: airlock against a direct connection and
//! against PgBouncer, on one throwaway PostgreSQL, in one run.
//!
//! - Throughput and latency: `pgbench -n -S` (scale 10) in the simple,
//!   extended and prepared query modes, at 1 client and at 8 clients (2
//!   threads), and an application-like script (`SET`, `BEGIN`, two reads,
//!   `COMMIT` per transaction, `pgbench::APP_SCRIPT`) in the extended mode. Runs are interleaved — every workload direct, through airlock,
//!   through airlock with classification off, through PgBouncer, then the
//!   next workload, repeat after repeat (the two airlock runs swap places
//!   every other repeat) — so drift on a shared machine hits all alike. The
//!   tables show medians and the ratios that matter; absolute numbers from
//!   different runs are not comparable.
//! - Classification cost: airlock against a second airlock process started
//!   with `--classification false` (everything forwarded unchecked) and
//!   otherwise identical; their throughput ratio per workload, held against
//!   the target that, with the cache, classification costs no more than 5%
//!   of pgbench -S throughput.
//! - CPU: each proxy's user+system time across a run, per transaction.
//! - Memory: each proxy's resident set size idle and with 2000 idle
//!   client sessions open through it.
//!
//! The proxies run as separate processes (airlock from the release binary
//! cargo builds for this benchmark), in session mode, with default settings
//! apart from what PgBouncer needs to accept pgbench and 2000 clients.
//! airlock inherits the environment, so `AIRLOCK_*` settings (such as
//! `AIRLOCK_WORKERS`) set for `cargo bench` reach both airlock processes;
//! only `--classification` is set on their command lines.
//!
//! `AIRLOCK_BENCH_SECONDS` (default 10) sets the length of each run,
//! `AIRLOCK_BENCH_REPEATS` (default 3) how often each runs, and
//! `AIRLOCK_BENCH_TARGETS` (default all: `direct,airlock,airlock-off,pgbouncer`)
//! which targets run; `airlock,airlock-off` measures only what
//! classification costs, with more repeats in the same time. Targets are
//! printed as PASS or MISS; a MISS does not fail the process, which only
//! fails when it cannot measure at all. Everything it starts is stopped and
//! removed at the end, on error too.

// The helpers live in benches/proxy/; a crate root's `mod` looks beside it.
#[path = "proxy/client.rs"]
mod client;
#[path = "proxy/idle.rs"]
mod idle;
#[path = "proxy/machine.rs"]
mod machine;
#[path = "proxy/pgbench.rs"]
mod pgbench;
#[path = "proxy/report.rs"]
mod report;
#[path = "proxy/servers.rs"]
mod servers;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use airlock::cluster::{ClusterOptions, TempCluster};
use machine::Machine;
use pgbench::{Mode, Workload, DATABASE};
use report::{Results, Sample, Target};
use servers::{ScratchDir, Server};

/// pgbench scale: 1,000,000 rows in `pgbench_accounts`, about 160 MB.
const SCALE: u32 = 10;
/// Client sessions held open for the memory measurement.
const IDLE_CONNECTIONS: usize = 2000;
/// Each idle session through a proxy has its own backend; leave headroom
/// for the proxies' pools and for psql.
const MAX_CONNECTIONS: u32 = IDLE_CONNECTIONS as u32 + 100;
/// The airlock binary cargo built for this benchmark (release profile).
const AIRLOCK_BIN: &str = env!("CARGO_BIN_EXE_airlock");

const WORKLOADS: [Workload; 8] = [
    Workload::new(Mode::Simple, 1),
    Workload::new(Mode::Extended, 1),
    Workload::new(Mode::Prepared, 1),
    Workload::new(Mode::Simple, 8),
    Workload::new(Mode::Extended, 8),
    Workload::new(Mode::Prepared, 8),
    Workload::app(Mode::Extended, 1),
    Workload::app(Mode::Extended, 8),
];

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, where a ten-minute measurement has no place.
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxy benchmark: skipped (run `cargo bench --bench proxy`)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long and how often each run goes.
struct Settings {
    seconds: u64,
    repeats: usize,
    targets: Vec<Target>,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let seconds = env_number("AIRLOCK_BENCH_SECONDS", 10)?;
        let repeats = env_number("AIRLOCK_BENCH_REPEATS", 3)?;
        if seconds == 0 || repeats == 0 {
            bail!("AIRLOCK_BENCH_SECONDS and AIRLOCK_BENCH_REPEATS must be at least 1");
        }
        let targets = match std::env::var("AIRLOCK_BENCH_TARGETS") {
            Err(_) => Target::ALL.to_vec(),
            Ok(list) => list
                .split(',')
                .map(|name| {
                    Target::from_name(name.trim()).with_context(|| {
                        format!(
                            "AIRLOCK_BENCH_TARGETS: {name:?} is none of direct, airlock, \
                             airlock-off, pgbouncer"
                        )
                    })
                })
                .collect::<Result<_>>()?,
        };
        Ok(Settings {
            seconds,
            repeats: repeats as usize,
            targets,
        })
    }
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let machine = Machine::read();
    println!("airlock proxy benchmark");
    println!(
        "machine: {} CPUs, {:.1} GiB memory, {}",
        machine.cpus, machine.memory_gib, machine.cpu_model
    );
    println!(
        "runs: pgbench -n -S and an app script (SET, BEGIN, 2 reads, COMMIT), scale {SCALE}, \
         {} s each, {} repeats, interleaved {}",
        settings.seconds,
        settings.repeats,
        settings
            .targets
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join("/")
    );
    println!("load average at start: {}", machine::load_average());

    // Declared first so it is dropped last, after the proxies in front of it.
    let cluster = TempCluster::start(&ClusterOptions {
        max_connections: MAX_CONNECTIONS,
        // The data set fits in shared buffers; the rest of memory is left to
        // the backends of the idle-connection test.
        settings: vec!["shared_buffers = '512MB'".into()],
        ..ClusterOptions::default()
    })
    .context("starting PostgreSQL")?;
    let pgbench = cluster.tool("pgbench");
    cluster.psql("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
    let started = Instant::now();
    pgbench::initialize(&pgbench, cluster.port(), SCALE)?;
    println!(
        "pgbench -i -s {SCALE}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let scratch = ScratchDir::new()?;
    let app_script = scratch.path().join("app.sql");
    std::fs::write(&app_script, pgbench::APP_SCRIPT).context("writing the app script")?;
    let mut airlock =
        servers::start_airlock(AIRLOCK_BIN.as_ref(), &cluster.addr(), true, &scratch)?;
    let mut airlock_off =
        servers::start_airlock(AIRLOCK_BIN.as_ref(), &cluster.addr(), false, &scratch)?;
    if !airlock_off.log_contains("classification is off") {
        println!("note: airlock-off did not log that classification is off (log level?)");
    }
    let mut pgbouncer =
        servers::start_pgbouncer(cluster.port(), IDLE_CONNECTIONS as u32, &scratch)?;
    println!(
        "versions: {}; {}; {}",
        cluster.psql("postgres", "SELECT version()")?.trim(),
        first_line("pgbouncer", &["--version"]),
        first_line(AIRLOCK_BIN, &["--version"]),
    );
    println!("airlock threads: {}", machine::threads(airlock.pid())?);

    let mut bench = Bench {
        targets: settings.targets.clone(),
        pgbench,
        app_script,
        direct_port: cluster.port(),
        clock_ticks: machine::clock_ticks_per_second(),
        airlock: &mut airlock,
        airlock_off: &mut airlock_off,
        pgbouncer: &mut pgbouncer,
    };
    bench.warm_up(settings.seconds.min(3))?;
    let results = bench.measure(&settings)?;

    println!("\nmeasuring memory with {IDLE_CONNECTIONS} idle connections ...");
    let airlock_memory = idle::measure(&mut airlock, IDLE_CONNECTIONS)
        .context("holding idle connections through airlock")?;
    // Their backends must be gone before PgBouncer opens as many again.
    wait_for_backends(&cluster, 50)?;
    let pgbouncer_memory = idle::measure(&mut pgbouncer, IDLE_CONNECTIONS)
        .map_err(|e| eprintln!("  pgbouncer idle connections: {e:#}"))
        .ok();

    println!("load average at end: {}", machine::load_average());

    results.print();
    report::print_memory(&airlock_memory, pgbouncer_memory.as_ref());
    Ok(())
}

/// What each run needs: pgbench, where to point it, and the proxies to
/// watch.
struct Bench<'a> {
    /// The targets measured (`AIRLOCK_BENCH_TARGETS`).
    targets: Vec<Target>,
    pgbench: std::path::PathBuf,
    /// Where the application-like script is written.
    app_script: std::path::PathBuf,
    direct_port: u16,
    clock_ticks: f64,
    airlock: &'a mut Server,
    airlock_off: &'a mut Server,
    pgbouncer: &'a mut Server,
}

impl Bench<'_> {
    /// Brings the table into shared buffers and every path up to speed.
    fn warm_up(&mut self, seconds: u64) -> Result<()> {
        println!("warming up ({seconds} s per target) ...");
        let workload = Workload::new(Mode::Simple, 8);
        for target in self.targets.clone() {
            if let Err(e) = self.run_once(target, workload, seconds, 0)? {
                println!("  warm-up via {}: {e}", target.as_str());
            }
        }
        Ok(())
    }

    /// Every workload against every target, `repeats` times over.
    fn measure(&mut self, settings: &Settings) -> Result<Results> {
        let mut results = Results::new(&WORKLOADS);
        let selected = self.targets.clone();
        let total = settings.repeats * WORKLOADS.len() * selected.len();
        let mut done = 0;
        for repeat in 0..settings.repeats {
            for workload in WORKLOADS {
                let order = Target::order(repeat);
                for target in order.into_iter().filter(|t| selected.contains(t)) {
                    done += 1;
                    let what = format!(
                        "[{done:>2}/{total}] {:<8} {} cl  {:<11}",
                        workload.label(),
                        workload.clients,
                        target.as_str()
                    );
                    match self.run_once(target, workload, settings.seconds, repeat)? {
                        Ok(sample) => {
                            println!("{what} {}", describe(&sample));
                            results.record(workload, target, sample);
                        }
                        Err(e) => {
                            println!("{what} FAILED: {e}");
                            results.record_error(workload, target, e);
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    /// One pgbench run against `target`. The outer error means a proxy
    /// died and the benchmark cannot go on; the inner one is a failed run.
    fn run_once(
        &mut self,
        target: Target,
        workload: Workload,
        seconds: u64,
        repeat: usize,
    ) -> Result<Result<Sample, String>> {
        let (port, server) = match target {
            Target::Direct => (self.direct_port, None),
            Target::Airlock => (self.airlock.port, Some(&mut *self.airlock)),
            Target::AirlockOff => (self.airlock_off.port, Some(&mut *self.airlock_off)),
            Target::PgBouncer => (self.pgbouncer.port, Some(&mut *self.pgbouncer)),
        };
        let before = server
            .as_ref()
            .map(|s| machine::cpu_ticks(s.pid()))
            .transpose()?;
        let outcome = pgbench::run(&self.pgbench, port, workload, seconds, &self.app_script);
        let cpu_us_per_tx = match (server, before) {
            (Some(server), Some(before)) => {
                server.check_alive()?;
                let ticks = machine::cpu_ticks(server.pid())? - before;
                outcome
                    .as_ref()
                    .ok()
                    .map(|o| ticks as f64 / self.clock_ticks * 1e6 / o.transactions.max(1) as f64)
            }
            _ => None,
        };
        Ok(outcome
            .map(|outcome| Sample {
                outcome,
                cpu_us_per_tx,
                repeat,
            })
            .map_err(|e| format!("{e:#}")))
    }
}

fn describe(sample: &Sample) -> String {
    let o = &sample.outcome;
    let mut s = format!(
        "{:>8.0} tps  {:>7.3} ms  {:>9} tx",
        o.tps, o.latency_ms, o.transactions
    );
    if let Some(cpu) = sample.cpu_us_per_tx {
        s.push_str(&format!("  proxy cpu {cpu:.1} us/tx"));
    }
    s
}

/// Waits until at most `at_most` client backends remain on the cluster.
fn wait_for_backends(cluster: &TempCluster, at_most: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count: u64 = cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )?
            .trim()
            .parse()
            .context("counting backends")?;
        if count <= at_most {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{count} backends still open a minute after their clients left");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first line a program prints, or a note that it printed nothing.
fn first_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("{program}: version unknown"))
}
