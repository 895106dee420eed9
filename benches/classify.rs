//! `cargo bench --bench classify`: what classifying one statement costs,
//! parsed every time (`classify`) and through the per-thread shape cache
//! (`classify_cached`, warm), for statements real clients send.
//!
//! Each statement comes in [`VARIANTS`] versions that differ only in their
//! literal values (the account id, the delta, the oid psql looks up), and
//! every iteration takes the next one, as a busy session would: the parser
//! sees new text each time and the cache has to find the shape, not the
//! text. Both functions get the same inputs in the same order.
//!
//! Criterion prints its usual report for each benchmark; at the end a table
//! puts the two side by side with the speed-up. The times there are the
//! slope of elapsed time over iterations across criterion's measurement
//! samples (criterion's own point estimate for its linear sampling).
//!
//! A third measurement, `cached+catalog`, adds what the gate does next:
//! resolving the cached facts against a database catalog with user code in
//! it (a few hundred user functions, views, a domain, an operator; see
//! [`catalog_with_user_code`]), which is the per-statement cost of the
//! catalog of user code (docs/catalog.md).
//!
//! With `--bench`, a fourth: a real PostgreSQL (a throwaway cluster) with
//! 10,000 PL/pgSQL functions and 1,000 views over them, and the time and
//! memory of loading and judging its catalog as the proxy does
//! ([`real_catalog_load`]).
//!
//! Run in test mode (`cargo test --all-targets`, which does not pass
//! `--bench`), criterion runs each benchmark once; the checks below still
//! run, the timing table is left out.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::Criterion;

use std::sync::Arc;

use airlock::catalog::load::{Function, Operator, Raw, Type, View};
use airlock::catalog::{resolve, Known, Snapshot};
use airlock::classify::cache::{self, classify_cached, MAX_KEY};
use airlock::classify::{classify, Facts};

/// Versions of each statement, cycled through.
const VARIANTS: usize = 256;

/// One statement of the representative set.
struct Case {
    /// Benchmark group name (criterion's directory name).
    id: &'static str,
    /// What the summary calls it.
    label: &'static str,
    /// The statement's versions, differing only in literals.
    inputs: Vec<String>,
    /// Whether the cache should serve it (false above [`MAX_KEY`]).
    cached: bool,
}

/// A small deterministic generator (xorshift64*), so every run classifies
/// the same texts.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }

    fn aid(&mut self) -> u64 {
        // pgbench scale 10: accounts 1..=1,000,000.
        1 + self.next(1_000_000)
    }
}

/// psql 15's `\d customers` column query (from corpus_clients.txt), for the
/// table with oid `oid`.
fn psql_describe_columns(oid: u64) -> String {
    format!(
        "SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;"
    )
}

fn in_list(n: &mut Numbers, ids: usize) -> String {
    let list: Vec<String> = (0..ids).map(|_| n.aid().to_string()).collect();
    format!(
        "SELECT aid, bid, abalance FROM pgbench_accounts WHERE aid IN ({})",
        list.join(", ")
    )
}

fn cases() -> Vec<Case> {
    let mut n = Numbers(0x9e37_79b9_7f4a_7c15);
    let mut versions = |f: &mut dyn FnMut(&mut Numbers) -> String| -> Vec<String> {
        (0..VARIANTS).map(|_| f(&mut n)).collect()
    };
    vec![
        Case {
            id: "pgbench_select",
            label: "pgbench -S SELECT",
            inputs: versions(&mut |n| {
                format!(
                    "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                    n.aid()
                )
            }),
            cached: true,
        },
        Case {
            id: "pgbench_update",
            label: "pgbench TPC-B UPDATE",
            inputs: versions(&mut |n| {
                let delta = n.next(10_001) as i64 - 5000;
                format!(
                    "UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {};",
                    n.aid()
                )
            }),
            cached: true,
        },
        Case {
            id: "psql_describe",
            label: "psql \\d columns (catalog)",
            inputs: versions(&mut |n| psql_describe_columns(16384 + n.next(100_000))),
            cached: true,
        },
        Case {
            id: "three_statements",
            label: "3 statements, one Query",
            inputs: versions(&mut |n| {
                let (aid, tid, bid) = (n.aid(), 1 + n.next(100), 1 + n.next(10));
                let delta = n.next(10_001) as i64 - 5000;
                format!(
                    "UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}; \
                     SELECT abalance FROM pgbench_accounts WHERE aid = {aid}; \
                     INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
                     VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
                )
            }),
            cached: true,
        },
        Case {
            id: "in_list_500",
            label: "IN list, 500 ids",
            inputs: versions(&mut |n| in_list(n, 500)),
            cached: true,
        },
        Case {
            id: "in_list_2000",
            label: "IN list, 2000 ids (> MAX_KEY)",
            inputs: versions(&mut |n| in_list(n, 2000)),
            cached: false,
        },
    ]
}

/// Checks that the inputs parse, that both functions agree, and that the
/// cache serves every version of a statement from one or two entries (a
/// negative literal, `+ -5`, has a shape of its own) or, above
/// [`MAX_KEY`], not at all. Leaves the cache warm.
fn check_and_warm(case: &Case) {
    let before = cache::stats().0;
    // Parsing every version twice would make `cargo test` slow for nothing.
    for sql in case.inputs.iter().take(8) {
        let plain: Facts = classify(sql);
        assert!(plain.error.is_none(), "{}: {:?}", case.id, plain.error);
        assert_eq!(*classify_cached(sql), plain, "{}: facts differ", case.id);
    }
    if !case.cached {
        assert_eq!(cache::stats().0, before, "{}: cached", case.id);
        assert!(case.inputs.iter().all(|s| s.len() > MAX_KEY));
        return;
    }
    for sql in &case.inputs {
        classify_cached(sql);
    }
    let shapes = cache::stats().0 - before;
    assert!((1..=2).contains(&shapes), "{}: {shapes} entries", case.id);
    for sql in &case.inputs {
        classify_cached(sql);
    }
    assert_eq!(cache::stats().0 - before, shapes, "{}: misses", case.id);
}

/// Every call criterion made to one benchmark's routine: (iterations,
/// elapsed).
type Calls = Rc<RefCell<Vec<(u64, Duration)>>>;

/// Benchmarks `f` over the versions of `case`, cycling through them, and
/// records every call in `calls`.
fn bench_one<R>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    case: &Case,
    calls: &Calls,
    f: impl Fn(&str) -> R,
) {
    let calls = Rc::clone(calls);
    let mut next = 0;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f(black_box(&case.inputs[next])));
                next = (next + 1) % VARIANTS;
            }
            let elapsed = start.elapsed();
            calls.borrow_mut().push((iters, elapsed));
            elapsed
        })
    });
}

/// Time per iteration in nanoseconds over criterion's measurement samples.
///
/// Criterion first warms up with doubling iteration counts, then takes its
/// samples with counts that never fall (d, 2d, 3d, ... or all equal), the
/// first far below the last warm-up count; the samples are the calls after
/// the last drop. The estimate is the least-squares slope through the
/// origin, as criterion computes it. `None` without samples (test mode).
fn per_iteration_ns(calls: &[(u64, Duration)]) -> Option<f64> {
    let start = (1..calls.len())
        .rev()
        .find(|&k| calls[k].0 < calls[k - 1].0)?;
    let samples = &calls[start..];
    let xy: f64 = samples
        .iter()
        .map(|(n, t)| *n as f64 * t.as_nanos() as f64)
        .sum();
    let xx: f64 = samples.iter().map(|(n, _)| (*n as f64).powi(2)).sum();
    (xx > 0.0).then(|| xy / xx)
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A catalog like a large application's: 10,000 user functions (none named
/// like a built-in or a column of the benchmark statements), 1,000 views
/// over them, a checked domain and a user operator, on a PostgreSQL 15
/// whose built-ins are as shipped. Prints how long judging it takes and
/// how much the snapshot holds (resident memory before and after).
fn catalog_with_user_code() -> Known {
    let functions = (0..10_000u32)
        .map(|i| Function {
            oid: 20000 + i,
            schema: "app".into(),
            name: format!("app_fn_{i}"),
            volatility: if i % 2 == 0 { 'v' } else { 's' },
            nargs: i64::from(i % 3),
            nargdefaults: 0,
            extension: None,
            language: "plpgsql".into(),
            body: String::new(),
        })
        .collect();
    let views = (0..1_000)
        .map(|i| View {
            schema: "app".into(),
            name: format!("app_view_{i}"),
            definition: format!("SELECT id, app.app_fn_{i}(id) AS v FROM app.items WHERE id > {i}"),
        })
        .collect();
    let raw = Raw {
        fingerprint: "bench".into(),
        functions,
        operators: vec![Operator {
            schema: "app".into(),
            name: "~~~".into(),
            function: 20001,
            function_schema: "app".into(),
            function_name: "app_fn_1".into(),
        }],
        views,
        checks: vec![(30001, "app.app_fn_3(VALUE)".into())],
        types: vec![Type {
            oid: 30001,
            schema: "app".into(),
            name: "checked".into(),
            relation: None,
            contains: vec![23],
            extension: None,
            calls: Vec::new(),
        }],
        major: 15,
        server_encoding: "UTF8".into(),
        baseline: airlock::catalog::baseline::Baseline::pristine_rows(15, &[]),
        ..Raw::default()
    };
    let rss_before = resident_bytes();
    let started = std::time::Instant::now();
    let snapshot = Snapshot::build(raw);
    let took = started.elapsed();
    let rss_after = resident_bytes();
    println!(
        "catalog of 10000 functions and 1000 views: judged in {:.1} ms, snapshot about {:.1} MiB resident",
        took.as_secs_f64() * 1e3,
        rss_after.saturating_sub(rss_before) as f64 / (1024.0 * 1024.0)
    );
    let known = Known::Snapshot(Arc::new(snapshot));
    // The catalog must have user code that resolution finds.
    let probe = Arc::new(classify("SELECT * FROM app_view_7"));
    assert!(!resolve(&probe, &known, false, &[]).is_read());
    known
}

/// Resident memory of this process, from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Loads the catalog of a real database with 10,000 functions, 1,000
/// views and 1,000 tables with a serial key, a default, a CHECK and an
/// expression index (whose writes stay plain writes) three times, as the proxy's loader does (its queries, then
/// judging), and prints each time and the resident memory the snapshot
/// holds.
fn real_catalog_load() -> anyhow::Result<()> {
    use airlock::cluster::{ClusterOptions, TempCluster};
    let cluster = TempCluster::start(&ClusterOptions::default())?;
    cluster.psql("postgres", "CREATE DATABASE catalog_bench")?;
    cluster.psql(
        "catalog_bench",
        "CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY, v text);
         DO $$ BEGIN
           FOR i IN 0..9999 LOOP
             EXECUTE format('CREATE FUNCTION app.app_fn_%s(int) RETURNS int LANGUAGE plpgsql
                             %s AS $b$ BEGIN RETURN $1 + %s; END $b$',
                            i, CASE WHEN i % 2 = 0 THEN 'VOLATILE' ELSE 'STABLE' END, i);
           END LOOP;
           FOR i IN 0..999 LOOP
             EXECUTE format('CREATE VIEW app.app_view_%s AS
                             SELECT id, app.app_fn_%s(id) AS v FROM app.items WHERE id > %s', i, i, i);
             EXECUTE format('CREATE TABLE app.app_table_%s (id serial PRIMARY KEY,
                             at timestamptz DEFAULT now(), n int CHECK (n > 0), v text)', i);
             EXECUTE format('CREATE INDEX ON app.app_table_%s (lower(v))', i);
           END LOOP;
         END $$",
    )?;
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname=catalog_bench",
        cluster.port()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for round in 1..=3 {
        let rss_before = resident_bytes();
        let started = Instant::now();
        let snapshot = rt
            .block_on(airlock::catalog::load_snapshot(&conninfo))
            .map_err(anyhow::Error::msg)?;
        let took = started.elapsed();
        let rss_after = resident_bytes();
        let known = Known::Snapshot(Arc::new(snapshot));
        let probe = Arc::new(classify("SELECT * FROM app.app_view_7"));
        assert!(!resolve(&probe, &known, false, &[]).is_read());
        let insert = Arc::new(classify(
            "INSERT INTO app.app_table_7 (n, v) VALUES (1, 'x')",
        ));
        assert!(!airlock::catalog::may_change_catalog(
            &resolve(&insert, &known, false, &[]),
            &known
        ));
        println!(
            "real catalog of 10000 functions, 1000 views and 1000 tables (serial, default, check, expression index), load {round}: read and judged in {:.1} ms, \
             snapshot about {:.1} MiB resident",
            took.as_secs_f64() * 1e3,
            rss_after.saturating_sub(rss_before) as f64 / (1024.0 * 1024.0)
        );
        drop(known);
    }
    Ok(())
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        if let Err(e) = real_catalog_load() {
            println!("real catalog load: failed: {e:#}");
        }
    }
    let cases = cases();
    let known = catalog_with_user_code();
    for case in &cases {
        check_and_warm(case);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
        .configure_from_args();

    let mut recorded = Vec::new();
    for case in &cases {
        let uncached: Calls = Default::default();
        let cached: Calls = Default::default();
        let resolved: Calls = Default::default();
        let mut group = c.benchmark_group(case.id);
        bench_one(&mut group, "uncached", case, &uncached, classify);
        // Warm again: other cases ran in between (they do not evict at
        // these sizes, but the measurement should not depend on that).
        if case.cached {
            for sql in &case.inputs {
                classify_cached(sql);
            }
        }
        bench_one(&mut group, "cached", case, &cached, classify_cached);
        bench_one(&mut group, "cached+catalog", case, &resolved, |sql| {
            resolve(&classify_cached(sql), &known, false, &[])
        });
        group.finish();
        recorded.push((case, uncached, cached, resolved));
    }
    c.final_summary();
    print_summary(&recorded);
}

/// The table of both times and the speed-up, for the cases criterion
/// measured (none in test mode).
fn print_summary(recorded: &[(&Case, Calls, Calls, Calls)]) {
    let rows: Vec<(&Case, f64, f64, f64)> = recorded
        .iter()
        .filter_map(|(case, uncached, cached, resolved)| {
            Some((
                *case,
                per_iteration_ns(&uncached.borrow())?,
                per_iteration_ns(&cached.borrow())?,
                per_iteration_ns(&resolved.borrow())?,
            ))
        })
        .collect();
    println!();
    if rows.is_empty() {
        println!("classify: no timings in test mode (run `cargo bench --bench classify`)");
        return;
    }
    println!("Classification per statement: classify vs classify_cached (warm), same inputs");
    println!(
        "  {:<32} {:>6} {:>11} {:>11} {:>9} {:>15}",
        "statement", "bytes", "uncached", "cached", "speed-up", "cached+catalog"
    );
    for (case, uncached, cached, resolved) in rows {
        let bytes = case.inputs.iter().map(String::len).sum::<usize>() / case.inputs.len();
        println!(
            "  {:<32} {:>6} {:>11} {:>11} {:>8.1}x {:>15}",
            case.label,
            bytes,
            time(uncached),
            time(cached),
            uncached / cached,
            time(resolved)
        );
    }
    println!(
        "  bytes: average statement length. Times per statement, each iteration with the next \
         of {VARIANTS} versions\n  differing in literals (slope over criterion's samples). \
         Statements longer than MAX_KEY ({MAX_KEY} bytes)\n  bypass the cache. \
         cached+catalog: cached, then resolved against a catalog with user code."
    );
}
