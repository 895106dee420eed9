//! No session waits for another (issue 9): reads through airlock keep the
//! ratio to direct reads they have on an idle database while other
//! sessions run a long approved write, an allowed write loop, DDL on
//! other tables and a long index build. Reads through airlock and direct are measured side by
//! side, interleaved, in one run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::approval::*;
use common::*;

const DB: &str = "airlock_test";

/// What the other sessions are allowed to do, before the reads, session
/// statements and reviewed writes of [`quick_rules`].
fn rules() -> String {
    format!(
        r#"
[[rule]]
name = "log-writes"
kind = ["write"]
tables = ["conc_log"]
action = "allow"

[[rule]]
name = "ddl-on-the-scratch-tables"
kind = ["ddl"]
tables = ["conc_ddl", "conc_idx"]
action = "allow"

[[rule]]
name = "sleeps"
functions = ["pg_sleep"]
action = "allow"
{}"#,
        quick_rules("1m")
    )
}

/// Latencies of `n` point reads through `via` and straight to PostgreSQL,
/// one after the other.
async fn reads(
    via: &tokio_postgres::Client,
    direct: &tokio_postgres::Client,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let sql = "SELECT v FROM conc_read WHERE id = $1";
    let (mut a, mut d) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let id = (i % 100) as i32 + 1;
        let t = Instant::now();
        via.query_one(sql, &[&id])
            .await
            .expect("read through airlock");
        a.push(t.elapsed());
        let t = Instant::now();
        direct.query_one(sql, &[&id]).await.expect("read direct");
        d.push(t.elapsed());
    }
    (a, d)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

struct Figures {
    median_ratio: f64,
    p99_ratio: f64,
    worst: Duration,
}

fn figures(label: &str, (mut a, mut d): (Vec<Duration>, Vec<Duration>)) -> Figures {
    let (am, dm) = (percentile(&mut a, 0.5), percentile(&mut d, 0.5));
    let (a99, d99) = (percentile(&mut a, 0.99), percentile(&mut d, 0.99));
    let worst = *a.last().unwrap();
    let f = Figures {
        median_ratio: am.as_secs_f64() / dm.as_secs_f64(),
        p99_ratio: a99.as_secs_f64() / d99.as_secs_f64(),
        worst,
    };
    eprintln!(
        "{label}: {} reads; median airlock {am:?} direct {dm:?} (x{:.2}); \
         p99 airlock {a99:?} direct {d99:?} (x{:.2}); slowest through airlock {worst:?}",
        a.len(),
        f.median_ratio,
        f.p99_ratio
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_do_not_wait_for_other_sessions_writes_or_ddl() {
    for t in [
        "conc_read",
        "conc_target",
        "conc_log",
        "conc_ddl",
        "conc_idx",
    ] {
        direct(&format!("DROP TABLE IF EXISTS {t}"));
    }
    direct(
        "CREATE TABLE conc_read (id int PRIMARY KEY, v int); \
         INSERT INTO conc_read SELECT g, g FROM generate_series(1, 100) g; \
         CREATE TABLE conc_target (id int PRIMARY KEY, v int); \
         INSERT INTO conc_target VALUES (1, 0); \
         CREATE TABLE conc_log (at timestamptz DEFAULT now(), n int); \
         CREATE TABLE conc_ddl (id int); \
         CREATE TABLE conc_idx (id int, v text)",
    );
    let proxy = proxy_with_rules(&rules());
    let via = proxy.connect("postgres", DB).await;
    let straight = connect(&direct_conninfo("postgres", DB)).await;
    // Warm both paths (prepared statements, the catalog snapshot).
    reads(&via, &straight, 50).await;
    let idle = figures("idle", reads(&via, &straight, 400).await);

    // A long approved write: the UPDATE waits on a row lock held straight
    // in PostgreSQL, for as long as the loaded phase lasts. A long index
    // build: the CREATE INDEX waits on the lock of an uncommitted INSERT.
    let locker = connect(&direct_conninfo("postgres", DB)).await;
    locker
        .batch_execute(
            "BEGIN; SELECT * FROM conc_target WHERE id = 1 FOR UPDATE; \
             INSERT INTO conc_idx VALUES (1, 'x')",
        )
        .await
        .unwrap();
    let indexer = proxy.connect("postgres", DB).await;
    let index = tokio::spawn(async move {
        indexer
            .simple_query("CREATE INDEX conc_idx_v ON conc_idx (lower(v))")
            .await
            .map(|_| ())
    });
    let writer = proxy.connect("postgres", DB).await;
    let update = tokio::spawn(async move {
        writer
            .simple_query("UPDATE conc_target SET v = v + 1 WHERE id = 1")
            .await
            .map(|_| ())
    });
    let held = tokio::task::spawn_blocking({
        let admin = proxy.admin;
        move || pending(admin, "UPDATE conc_target")
    })
    .await
    .unwrap();
    approve_ok(proxy.admin, ALICE, held["id"].as_str().unwrap());
    // The approved UPDATE is now running (waiting on the lock).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !update.is_finished(),
        "the approved UPDATE is still running"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (inserts, ddls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loop_client = proxy.connect("postgres", DB).await;
    let insert_loop = tokio::spawn({
        let (stop, inserts) = (Arc::clone(&stop), Arc::clone(&inserts));
        async move {
            while !stop.load(Ordering::Relaxed) {
                loop_client
                    .simple_query("INSERT INTO conc_log (n) VALUES (1)")
                    .await
                    .expect("allowed INSERT");
                inserts.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let ddl_client = proxy.connect("postgres", DB).await;
    let ddl_loop = tokio::spawn({
        let (stop, ddls) = (Arc::clone(&stop), Arc::clone(&ddls));
        async move {
            while !stop.load(Ordering::Relaxed) {
                for sql in [
                    "ALTER TABLE conc_ddl ADD COLUMN extra int",
                    "ALTER TABLE conc_ddl DROP COLUMN extra",
                ] {
                    ddl_client.simple_query(sql).await.expect("allowed DDL");
                    ddls.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let sleeper = proxy.connect("postgres", DB).await;
    let sleep_loop = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            while !stop.load(Ordering::Relaxed) {
                sleeper
                    .simple_query("SELECT pg_sleep(0.5)")
                    .await
                    .expect("allowed pg_sleep");
            }
        }
    });
    let started = Instant::now();
    let loaded = figures("loaded", reads(&via, &straight, 400).await);
    // The loops run for a fixed time at least, however quick the reads
    // were, so what they got done says whether they were kept waiting.
    let at_least = Duration::from_secs(3);
    if let Some(rest) = at_least.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    stop.store(true, Ordering::Relaxed);
    insert_loop.await.unwrap();
    ddl_loop.await.unwrap();
    sleep_loop.await.unwrap();
    assert!(!update.is_finished(), "the approved UPDATE ran all along");
    assert!(!index.is_finished(), "the CREATE INDEX ran all along");
    locker.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(PATIENCE, index)
        .await
        .expect("the CREATE INDEX ends once the lock is released")
        .unwrap()
        .expect("the allowed CREATE INDEX");
    tokio::time::timeout(PATIENCE, update)
        .await
        .expect("the UPDATE ends once the lock is released")
        .unwrap()
        .expect("the approved UPDATE");
    let (inserts, ddls) = (
        inserts.load(Ordering::Relaxed),
        ddls.load(Ordering::Relaxed),
    );
    eprintln!("beside the reads: {inserts} allowed INSERTs, {ddls} DDL statements, one approved UPDATE and one CREATE INDEX running");
    assert!(
        inserts > 50 && ddls > 4,
        "the other sessions ran ({inserts} INSERTs, {ddls} DDL)"
    );
    assert_eq!(value("conc_target", 1), 1, "the approved UPDATE ran once");

    assert!(
        loaded.median_ratio < idle.median_ratio * 1.5 + 0.5,
        "median read through airlock x{:.2} of direct under load, x{:.2} idle",
        loaded.median_ratio,
        idle.median_ratio
    );
    assert!(
        loaded.worst < Duration::from_millis(500),
        "a read through airlock waited {:?} for another session",
        loaded.worst
    );
}

/// Two sessions sleeping at once through airlock take as long as one
/// (psycopg2's own test_concurrent_execution does this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_allowed_statements_run_at_once() {
    let proxy = proxy_with_rules(&rules());
    let a = proxy.connect("postgres", DB).await;
    let b = proxy.connect("postgres", DB).await;
    let t = Instant::now();
    let (ra, rb) = tokio::join!(
        a.simple_query("SELECT pg_sleep(2)"),
        b.simple_query("SELECT pg_sleep(2)")
    );
    ra.expect("first sleep");
    rb.expect("second sleep");
    let took = t.elapsed();
    eprintln!("two concurrent pg_sleep(2) through airlock: {took:?}");
    assert!(
        took < Duration::from_millis(3500),
        "they ran one after the other: {took:?}"
    );
}
