//! Client compatibility: pgbench through the real proxy in each query mode,
//! the select-only and the TPC-B-like script, checked against what the
//! database holds afterwards.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

/// Runs pgbench with `args` against database `db` through `port`.
fn pgbench(port: u16, db: &str, args: &[&str]) -> Output {
    Command::new(&pg().pgbench)
        .args(["-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .arg(db)
        .stdin(Stdio::null())
        .output()
        .expect("run pgbench")
}

/// A value from pgbench's summary, e.g. `number of failed transactions`.
fn summary_number(out: &str, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key:?} in pgbench output:\n{out}"));
    let value = line[key.len()..].trim_start_matches(':').trim();
    value
        .split([' ', '/'])
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {key:?} line: {line}"))
}

/// Runs a ~2 s benchmark with 4 clients and checks it went cleanly; returns
/// the number of transactions processed.
fn run(proxy: &TestProxy, db: &str, mode: &str, script: &[&str]) -> u64 {
    let mut args = vec!["-n", "-c", "4", "-j", "2", "-T", "2", "-M", mode];
    args.extend_from_slice(script);
    let out = pgbench(proxy.port(), db, &args);
    let stdout = stdout_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(&format!("query mode: {mode}")), "{stdout}");
    assert_eq!(
        summary_number(&stdout, "number of failed transactions"),
        0,
        "{stdout}\n{stderr}"
    );
    let processed = summary_number(&stdout, "number of transactions actually processed");
    assert!(processed > 0, "{stdout}");
    assert!(
        !stderr.contains("error"),
        "pgbench reported errors:\n{stderr}"
    );
    processed
}

fn scalar(db: &str, sql: &str) -> String {
    stdout_ok(&psql(pg().port, "postgres", db, &["-At", "-c", sql]))
        .trim()
        .to_string()
}

/// Initializes a scale-1 dataset in a new database (through the proxy, so
/// its COPY of 100,000 rows goes through it too), then runs the
/// select-only and the TPC-B-like script in `mode`.
fn bench_mode(mode: &str) {
    let proxy = TestProxy::start();
    let db = unique("pgbench");
    stdout_ok(&psql(
        pg().port,
        "postgres",
        "postgres",
        &["-c", &format!("create database {db}")],
    ));
    let init = pgbench(proxy.port(), &db, &["-i", "-s", "1", "-q"]);
    stdout_ok(&init);
    assert_eq!(
        scalar(&db, "select count(*) from pgbench_accounts"),
        "100000"
    );

    run(&proxy, &db, mode, &["-S"]);
    assert_eq!(
        scalar(&db, "select count(*) from pgbench_history"),
        "0",
        "select-only wrote history"
    );

    let processed = run(&proxy, &db, mode, &[]);
    // Every TPC-B transaction committed exactly once: one history row each,
    // and the balances agree everywhere.
    assert_eq!(
        scalar(&db, "select count(*) from pgbench_history"),
        processed.to_string()
    );
    let sums = scalar(
        &db,
        "select (select coalesce(sum(abalance), 0) from pgbench_accounts) || ' '
             || (select coalesce(sum(bbalance), 0) from pgbench_branches) || ' '
             || (select coalesce(sum(tbalance), 0) from pgbench_tellers) || ' '
             || (select coalesce(sum(delta), 0) from pgbench_history)",
    );
    let parts: Vec<&str> = sums.split(' ').collect();
    assert!(
        parts.iter().all(|p| *p == parts[0]),
        "balances disagree: {sums}"
    );

    stdout_ok(&psql(
        pg().port,
        "postgres",
        "postgres",
        &["-c", &format!("drop database {db} with (force)")],
    ));
}

#[test]
fn pgbench_simple() {
    bench_mode("simple");
}

#[test]
fn pgbench_extended() {
    bench_mode("extended");
}

#[test]
fn pgbench_prepared() {
    bench_mode("prepared");
}
