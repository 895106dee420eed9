//! Bypass attempts that run, from SQL, a statement or portal the extended
//! protocol prepared on the server while it waits for approval, or that
//! make the proxy remember a statement the server never prepared. Each is
//! checked against the lab's fingerprint of the database (`common::lab`).
//!
//! A Parse is forwarded at once and a statement that needs approval waits
//! at its Bind, so no portal exists for SQL FETCH/MOVE to run, and nothing
//! is planned; `EXPLAIN EXECUTE` of the prepared statement is not a read
//! (the classifier). A named Parse the server may have rejected leaves the
//! name ambiguous, and a second Parse of it is not taken for the first.

mod common;

use common::lab::raw::outcome;
use common::lab::{Expect, Lab};
use common::rawpg::*;

use Expect::*;

/// A portal bound to a write that needs approval, fetched with SQL FETCH
/// (or MOVE), would run it: so the Bind itself waits for approval (the
/// lab's reviewer rejects it), no portal is made, and the FETCH finds
/// nothing to run.
#[tokio::test]
async fn sql_fetch_does_not_run_a_held_portal() {
    let mut lab = Lab::new().await;
    for (write, fetch) in [
        (
            "DELETE FROM victim WHERE id > 0 RETURNING id",
            "FETCH ALL FROM p1",
        ),
        (
            "DELETE FROM victim WHERE id > 0 RETURNING id",
            "MOVE ALL IN p1",
        ),
        ("SELECT pg_advisory_lock(4711)", "FETCH ALL FROM p1"),
    ] {
        let label = format!("[{fetch}] {write}");
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        let held = lab.rejecter.count();
        w.simple("BEGIN");
        w.send(
            &[
                parse(b"", write.as_bytes(), &[]),
                bind(b"p1", b"", &[], 0),
                sync(),
            ]
            .concat(),
        );
        let bound = w.until(b'Z', 1);
        lab.judge_code(&format!("{label}: Bind"), Refused, outcome(&bound));
        assert!(
            lab.rejecter.count() > held,
            "{label}: the Bind was not held"
        );
        let msgs = w.simple(fetch);
        // The transaction failed with the Bind: 25P02, or 34000 had it not.
        assert!(first_error(&msgs).is_some(), "{label}: FETCH ran: {msgs:?}");
        w.simple("ROLLBACK");
        // Outside a transaction block too: FETCH of a portal never bound.
        w.send(
            &[
                parse(b"", write.as_bytes(), &[]),
                bind(b"p1", b"", &[], 0),
                sync(),
            ]
            .concat(),
        );
        let bound = w.until(b'Z', 1);
        lab.judge_code(&format!("{label}: Bind"), Refused, outcome(&bound));
        let msgs = w.simple(fetch);
        assert!(first_error(&msgs).is_some(), "{label}: FETCH ran: {msgs:?}");
        lab.check_after(&label, &before).await;
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    lab.finish();
}

/// A named Parse the server rejects leaves no statement behind; a second
/// Parse of the name, for a write, succeeds on the server.
#[tokio::test]
async fn a_failed_parse_does_not_lend_its_facts_to_the_name() {
    let mut lab = Lab::new().await;
    for write in [
        "DELETE FROM victim WHERE id > 0",
        "SELECT pg_advisory_lock(4711)",
    ] {
        let label = format!("[failed Parse, then] {write}");
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        // A read the server refuses to prepare: no such relation.
        w.send(&[parse(b"s1", b"SELECT * FROM no_such_relation", &[]), sync()].concat());
        let first = w.until(b'Z', 1);
        assert!(first_error(&first).is_some(), "{label}: {first:?}");
        w.simple("BEGIN");
        w.send(
            &[
                parse(b"s1", write.as_bytes(), &[]),
                bind(b"", b"s1", &[], 0),
                execute(b"", 0),
                sync(),
            ]
            .concat(),
        );
        let run = w.until(b'Z', 1);
        lab.judge_code(&label, Refused, outcome(&run));
        w.simple("COMMIT");
        lab.check_after(&label, &before).await;
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    lab.finish();
}

/// `EXPLAIN EXECUTE` plans a statement prepared while it awaits approval,
/// and planning folds calls of functions marked immutable: a user's such
/// function can still take an advisory lock.
#[tokio::test]
async fn explain_execute_does_not_plan_a_held_statement() {
    let mut lab = Lab::new().await;
    let s = lab.schema.clone();
    lab.admin
        .batch_execute(&format!(
            "CREATE FUNCTION {s}.frozen(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_advisory_lock($1); RETURN $1; END $$"
        ))
        .await
        .unwrap();
    for explain in [
        "EXPLAIN EXECUTE s1",
        "EXPLAIN CREATE TABLE t1 AS EXECUTE s1",
    ] {
        let label = format!("[{explain}] SELECT frozen(4711)");
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        let sql = format!("SELECT {s}.frozen(4711)");
        w.send(&[parse(b"s1", sql.as_bytes(), &[]), sync()].concat());
        let prepared = w.until(b'Z', 1);
        assert_eq!(tags(&prepared), "1Z", "{label}: Parse: {prepared:?}");
        let msgs = w.simple(explain);
        lab.judge_code(&label, Refused, outcome(&msgs));
        lab.check_after(&label, &before).await;
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    lab.finish();
}

/// Steps of one SQL-EXECUTE attempt: raw messages, each sent and read up
/// to its ReadyForQuery.
fn steps(table: &str) -> Vec<Vec<u8>> {
    let w = format!("DELETE FROM {table} WHERE id > 0");
    let sync_after = |m: Vec<u8>| [m, sync()].concat();
    vec![
        // A protocol statement `w` that deletes (needs approval at Bind:
        // its Parse passes).
        sync_after(parse(b"w", w.as_bytes(), &[])),
        // A DEALLOCATE that fails in an aborted block: `w` stays.
        query(b"BEGIN"),
        query(b"SELECT 1/0"),
        query(b"DEALLOCATE w"),
        query(b"ROLLBACK"),
        // A read under the same name: the server refuses it (42P05).
        query(b"PREPARE w AS SELECT 1"),
        // Run the name inside a block (no backstop there) and outside.
        query(b"BEGIN; EXECUTE w; COMMIT"),
        query(b"EXECUTE w"),
    ]
}

/// SQL EXECUTE of a name counts as a read only when every statement the
/// name may stand for is one. Here the name is first a protocol statement
/// that deletes; a DEALLOCATE of it fails (aborted block) and a PREPARE of
/// a read under the name fails (taken): the server still runs the delete.
/// Shown to delete when sent straight to PostgreSQL; through the proxy,
/// nothing changes.
#[tokio::test]
async fn sql_execute_of_a_name_that_may_still_be_a_write_is_no_read() {
    let mut lab = Lab::new().await;
    let s = lab.schema.clone();
    let count = format!("SELECT count(*)::text FROM {s}.victim");
    // Positive control: straight to PostgreSQL the rows go.
    let mut direct = Wire::open(
        format!("127.0.0.1:{}", common::pg().port).parse().unwrap(),
        "postgres",
        common::lab::DB,
    );
    direct.simple(&format!(
        "BEGIN; CREATE TEMP TABLE c AS SELECT * FROM {s}.victim"
    ));
    direct.simple("COMMIT");
    // The control runs on a copy of the table, in a session of its own.
    for m in steps("pg_temp.c") {
        direct.send(&m);
        direct.until(b'Z', 1);
    }
    assert_eq!(
        direct.values("SELECT count(*)::text FROM pg_temp.c"),
        ["0"],
        "the positive control deletes"
    );
    let before = lab.fingerprint().await;
    let mut w = lab.raw_attacker(&[]);
    let mut outcomes = Vec::new();
    for m in steps(&format!("{s}.victim")) {
        w.send(&m);
        outcomes.push(outcome(&w.until(b'Z', 1)));
    }
    let executes = &outcomes[outcomes.len() - 2..];
    for o in executes {
        match o {
            Err((code, _)) if code == "42501" || code == "25006" => {}
            other => lab.fail(format!("EXECUTE w through the proxy: {other:?}")),
        }
    }
    lab.finish_raw(w).await;
    let label = format!("EXECUTE of a name still bound to a write: {outcomes:?}");
    lab.check_after(&label, &before).await;
    let n: String = lab.admin.query_one(&count, &[]).await.unwrap().get(0);
    assert_eq!(n, "20");
    lab.attempts += 1;
    lab.finish();
}

/// pg_dump's way: PREPARE its catalog reads, then EXECUTE them, in its
/// READ ONLY transaction and outside one; it runs unheld, in the simple
/// and the extended protocol. An EXECUTE whose arguments write, or of a
/// name that was prepared both as a read and as a write, does not.
#[tokio::test]
async fn sql_execute_of_reads_runs_unheld() {
    let mut lab = Lab::new().await;
    lab.simple(
        "PREPARE rd(int) AS SELECT v FROM victim WHERE id = $1",
        Allowed,
    )
    .await;
    lab.simple("EXECUTE rd(3)", Allowed).await;
    lab.simple(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; EXECUTE rd(4); COMMIT",
        Allowed,
    )
    .await;
    lab.in_block("EXECUTE rd(5)", Allowed).await;
    lab.extended("EXECUTE rd(6)", &[], Allowed).await;
    lab.simple("EXPLAIN (COSTS OFF) EXECUTE rd(7)", Allowed)
        .await;
    lab.simple("EXECUTE rd(nextval('seq')::int)", Refused).await;
    lab.in_block("EXECUTE rd({s}.evil())", Refused).await;
    let held = lab.rejecter.count();
    // The same name prepared again as a write (refused by the server, as
    // the name is taken, but the proxy cannot know that for sure).
    lab.simple(
        "PREPARE rd(int) AS DELETE FROM victim WHERE id = $1",
        Refused,
    )
    .await;
    lab.in_block("EXECUTE rd(8)", Refused).await;
    assert!(lab.rejecter.count() > held);
    lab.finish();
}
