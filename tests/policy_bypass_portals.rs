//! Bypass attempts that run, from SQL, a statement or portal the extended
//! protocol prepared on the server while it waits for approval, or that
//! make the proxy remember a statement the server never prepared. Each is
//! checked against the lab's fingerprint of the database (`policy_lab`).
//!
//! A Parse is forwarded at once and a statement that needs approval waits
//! at its Bind, so no portal exists for SQL FETCH/MOVE to run, and nothing
//! is planned; `EXPLAIN EXECUTE` of the prepared statement is not a read
//! (the classifier). A named Parse the server may have rejected leaves the
//! name ambiguous, and a second Parse of it is not taken for the first.

mod approval_common;
mod common;
mod policy_lab;
mod rawpg;

use policy_lab::raw::outcome;
use policy_lab::{Expect, Lab};
use rawpg::*;

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
