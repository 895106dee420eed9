//! Bypass attempts under the shipped policy, through the real proxy, against
//! the real PostgreSQL: every way the product brief lists to smuggle a write
//! through a "read", in the simple and in the extended query protocol. Each
//! attempt must be refused with SQLSTATE 42501 (42601 where the text does not
//! parse), leave the database exactly as it was (see `common::lab`), and
//! leave the session usable. The few reads among them must run and change
//! nothing.
//!
//! Attempts that need exact protocol bytes (COPY FROM STDIN, FunctionCall,
//! named statements) are in `policy_bypass_wire.rs`.

mod common;

use common::lab::{Expect, Lab};

use Expect::*;

/// Attempts sent as they are, in both protocols. `multi` marks texts with
/// several statements, which PostgreSQL's extended protocol rejects by
/// itself (42601) if the proxy lets the Parse through.
const ATTEMPTS: &[(&str, Expect, bool)] = &[
    // Plain writes and DDL.
    ("DELETE FROM victim WHERE id = 1", Refused, false),
    ("DELETE FROM victim", Refused, false),
    ("UPDATE victim SET v = 'x' WHERE id = 2", Refused, false),
    ("INSERT INTO victim VALUES (100, 'new')", Refused, false),
    (
        "MERGE INTO victim t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE",
        Refused,
        false,
    ),
    ("TRUNCATE victim", Refused, false),
    ("DROP TABLE victim", Refused, false),
    ("DROP FUNCTION evil()", Refused, false),
    ("ALTER TABLE victim ADD COLUMN extra int", Refused, false),
    ("GRANT ALL ON victim TO PUBLIC", Refused, false),
    (
        "CREATE TABLE newtab2 AS SELECT * FROM victim",
        Refused,
        false,
    ),
    // Multi-statement strings.
    ("COMMIT; DELETE FROM victim", Refused, true),
    ("SELECT 1; DELETE FROM victim", Refused, true),
    (
        "SELECT 1; COMMIT; DELETE FROM victim WHERE id = 4",
        Refused,
        true,
    ),
    ("BEGIN; DELETE FROM victim; COMMIT", Refused, true),
    ("TABLE victim; DELETE FROM victim", Refused, true),
    // Writable CTEs.
    (
        "WITH d AS (DELETE FROM victim RETURNING id) SELECT count(*) FROM d",
        Refused,
        false,
    ),
    (
        "WITH u AS (UPDATE victim SET v = 'cte' RETURNING id) SELECT * FROM u",
        Refused,
        false,
    ),
    (
        "COPY (WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d) TO STDOUT",
        Refused,
        false,
    ),
    // Functions with side effects.
    ("SELECT nextval('seq')", Refused, false),
    ("VALUES (nextval('seq'))", Refused, false),
    ("SELECT setval('seq', 1000)", Refused, false),
    ("SELECT setval('ledger_id_seq', 1)", Refused, false),
    (
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        Refused,
        false,
    ),
    (
        "SELECT pg_catalog.set_config('role', '{other}', false)",
        Refused,
        false,
    ),
    ("SELECT pg_terminate_backend({pid})", Refused, false),
    ("SELECT pg_cancel_backend({pid})", Refused, false),
    ("SELECT lo_import('/etc/hostname')", Refused, false),
    ("SELECT lo_create(0)", Refused, false),
    ("SELECT lo_from_bytea(0, 'x')", Refused, false),
    ("SELECT pg_advisory_lock(1)", Refused, false),
    ("SELECT pg_try_advisory_lock(2)", Refused, false),
    ("SELECT pg_advisory_xact_lock(3)", Refused, false),
    (
        "SELECT query_to_xml('DELETE FROM victim RETURNING id', true, true, '')",
        Refused,
        false,
    ),
    ("SELECT evil()", Refused, false),
    ("SELECT * FROM victim WHERE id = evil()", Refused, false),
    (
        "SELECT * FROM victim, LATERAL (SELECT evil()) e",
        Refused,
        false,
    ),
    ("SELECT * FROM ROWS FROM (evil())", Refused, false),
    // EXPLAIN ANALYZE runs what it explains.
    ("EXPLAIN ANALYZE DELETE FROM victim", Refused, false),
    ("EXPLAIN (ANALYZE 1) DELETE FROM victim", Refused, false),
    (
        "EXPLAIN (ANALYZE true, FORMAT JSON) UPDATE victim SET v = 'x'",
        Refused,
        false,
    ),
    ("EXPLAIN ANALYZE SELECT evil()", Refused, false),
    // PREPARE / EXECUTE.
    ("PREPARE p AS DELETE FROM victim", Refused, false),
    ("EXECUTE p", Refused, false),
    // COPY to the server's files and programs.
    ("COPY victim TO PROGRAM 'touch {prog}'", Refused, false),
    ("COPY (SELECT 1) TO PROGRAM 'touch {prog}'", Refused, false),
    ("COPY victim TO '{file}'", Refused, false),
    // DO, CALL, SELECT INTO, row locks.
    ("DO $$ BEGIN DELETE FROM victim; END $$", Refused, false),
    ("CALL proc()", Refused, false),
    ("SELECT * INTO newtab FROM victim", Refused, false),
    ("SELECT * FROM victim FOR UPDATE", Refused, false),
    ("SELECT * FROM victim FOR SHARE NOWAIT", Refused, false),
    ("LOCK TABLE victim", Refused, false),
    // Identity and the read-only settings.
    ("SET ROLE postgres", Refused, false),
    ("SET ROLE {other}", Refused, false),
    ("SET SESSION AUTHORIZATION postgres", Refused, false),
    ("SET SESSION AUTHORIZATION {other}", Refused, false),
    ("SET \"Role\" = '{other}'", Refused, false),
    ("SET default_transaction_read_only = off", Refused, false),
    (
        "SET default_transaction_read_only TO DEFAULT",
        Refused,
        false,
    ),
    ("BEGIN READ WRITE", Refused, false),
    ("START TRANSACTION READ WRITE", Refused, false),
    ("SET TRANSACTION READ WRITE", Refused, false),
    (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        Refused,
        false,
    ),
    // Back to the session defaults, which the backstop made read-only.
    ("RESET ALL", Allowed, false),
    ("DISCARD ALL", Allowed, false),
    // NOTIFY.
    ("NOTIFY {chan}", Refused, false),
    ("NOTIFY {chan}, 'payload'", Refused, false),
    ("SELECT pg_notify('{chan}', 'x')", Refused, false),
    // Lexer tricks.
    ("SELECT $$x$$; DELETE FROM victim", Refused, true),
    ("SELECT E'\\''; DELETE FROM victim; --'", Refused, true),
    ("DELETE FROM U&\"vic\\0074im\"", Refused, false),
    (
        "DELETE FROM U&\"!0076ictim\" UESCAPE '!' WHERE id = 5",
        Refused,
        false,
    ),
    ("DELETE FROM \"victim\" WHERE id = 3", Refused, false),
    ("DELETE FROM victim/**/WHERE/* x */id = 6", Refused, false),
    (
        "DO $x$ BEGIN PERFORM 1; DELETE FROM victim; END $x$",
        Refused,
        false,
    ),
    ("SELEC 1", Syntax, false),
    // Reads that only look like writes: they run, and change nothing.
    ("SELECT 1 /* /* */ ; DELETE FROM victim; */", Allowed, false),
    ("SELECT $a$ $$; DELETE FROM victim; $$ $a$", Allowed, false),
    ("SELECT 'DELETE FROM victim'", Allowed, false),
    ("SELECT count(*) FROM victim", Allowed, false),
];

#[tokio::test]
async fn simple_protocol_bypass_attempts_change_nothing() {
    let mut lab = Lab::new().await;
    for &(sql, expect, _) in ATTEMPTS {
        lab.simple(sql, expect).await;
    }
    // batch_execute is the same message; a few through it for good measure.
    for sql in ["DELETE FROM victim", "SELECT 1; DELETE FROM victim"] {
        let before = lab.fingerprint().await;
        let r = lab.attacker.batch_execute(sql).await;
        lab.judge(&format!("[batch_execute] {sql}"), Refused, r);
        lab.check_after(sql, &before).await;
    }
    lab.finish();
}

#[tokio::test]
async fn bypass_attempts_inside_a_transaction_block_change_nothing() {
    let mut lab = Lab::new().await;
    for &(sql, expect, _) in ATTEMPTS {
        // PostgreSQL refuses DISCARD ALL in a block itself (25001).
        if sql == "DISCARD ALL" {
            continue;
        }
        lab.in_block(sql, expect).await;
    }
    lab.finish();
}

#[tokio::test]
async fn extended_protocol_bypass_attempts_change_nothing() {
    let mut lab = Lab::new().await;
    for &(sql, expect, multi) in ATTEMPTS {
        let expect = match (expect, multi) {
            (Refused, true) => RefusedOrSyntax,
            (e, _) => e,
        };
        lab.extended(sql, &[], expect).await;
    }
    lab.finish();
}

#[tokio::test]
async fn extended_protocol_with_parameters_changes_nothing() {
    let mut lab = Lab::new().await;
    let pid = lab.bystander_pid;
    let chan = lab.chan.clone();
    lab.extended("DELETE FROM victim WHERE id = $1", &[&1i32], Refused)
        .await;
    lab.prepared("DELETE FROM victim WHERE id = $1", &[&1i32], Refused)
        .await;
    lab.prepared("DELETE FROM victim WHERE id > $1", &[&0i32], Refused)
        .await;
    lab.extended(
        "UPDATE victim SET v = $1 WHERE id = $2",
        &[&"x", &2i32],
        Refused,
    )
    .await;
    lab.prepared(
        "INSERT INTO victim VALUES ($1, $2)",
        &[&101i32, &"y"],
        Refused,
    )
    .await;
    lab.extended(
        "WITH d AS (DELETE FROM victim WHERE id > $1 RETURNING id) SELECT count(*) FROM d",
        &[&0i32],
        Refused,
    )
    .await;
    lab.extended("SELECT setval('seq', $1)", &[&1000i64], Refused)
        .await;
    lab.extended("SELECT nextval($1::text)", &[&"seq"], Refused)
        .await;
    lab.extended(
        "SELECT set_config($1, $2, false)",
        &[&"default_transaction_read_only", &"off"],
        Refused,
    )
    .await;
    lab.prepared("SELECT pg_terminate_backend($1)", &[&pid], Refused)
        .await;
    lab.extended("SELECT pg_cancel_backend($1)", &[&pid], Refused)
        .await;
    lab.extended("SELECT lo_import($1)", &[&"/etc/hostname"], Refused)
        .await;
    lab.extended("SELECT lo_create($1)", &[&0u32], Refused)
        .await;
    lab.extended("SELECT pg_advisory_lock($1)", &[&1i64], Refused)
        .await;
    lab.extended("SELECT pg_notify($1, $2)", &[&chan, &"x"], Refused)
        .await;
    lab.extended(
        "SELECT * FROM victim WHERE id = evil() + $1",
        &[&0i32],
        Refused,
    )
    .await;
    lab.extended(
        "EXPLAIN ANALYZE DELETE FROM victim WHERE id = $1",
        &[&1i32],
        Refused,
    )
    .await;
    lab.prepared(
        "SELECT * FROM victim WHERE id = $1 FOR UPDATE",
        &[&1i32],
        Refused,
    )
    .await;
    lab.prepared("CALL proc()", &[], Refused).await;
    lab.prepared("SELECT evil()", &[], Refused).await;
    // The reads among them run with their parameters.
    lab.extended("SELECT v FROM victim WHERE id = $1", &[&7i32], Allowed)
        .await;
    let row = lab
        .attacker
        .query_one("SELECT v FROM victim WHERE id = $1", &[&7i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "row 7");
    lab.finish();
}

#[tokio::test]
async fn copy_through_the_extended_protocol_never_starts() {
    let mut lab = Lab::new().await;
    // tokio-postgres gives up a connection whose copy_in failed (it sends
    // CopyFail and Sync and then trips over the extra ReadyForQuery; it
    // does the same straight against PostgreSQL), so copy_in gets a
    // connection of its own.
    let copier = lab.connect_attacker().await;
    let before = lab.fingerprint().await;
    let r = copier
        .copy_in::<_, bytes::Bytes>("COPY victim FROM STDIN")
        .await
        .map(drop);
    lab.judge("[copy_in] COPY victim FROM STDIN", Refused, r);
    lab.check_after("copy_in", &before).await;
    let before = lab.fingerprint().await;
    let r = lab
        .attacker
        .copy_out("COPY (WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d) TO STDOUT")
        .await
        .map(drop);
    lab.judge("[copy_out] writable CTE", Refused, r);
    lab.check_after("copy_out", &before).await;
    lab.attempts += 2;
    lab.finish();
}
