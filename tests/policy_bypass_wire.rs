//! Bypass attempts under the shipped policy that need exact protocol bytes
//! or more than one step: COPY FROM STDIN in the simple protocol, the
//! FunctionCall message, pg_sleep, a busy bystander, locks inside a
//! transaction block, a statement name reused in the extended protocol,
//! `standard_conforming_strings`, startup parameters, and user code that
//! PostgreSQL runs from statements that parse as reads. Each is checked
//! against the lab's fingerprint of the database (`common::lab`).

mod common;

use std::time::{Duration, Instant};

use common::lab::raw::outcome;
use common::lab::{Expect, Lab, DB};
use common::rawpg::*;
use common::*;

use Expect::*;

/// The raw session still answers a query.
fn raw_usable(lab: &mut Lab, w: &mut Wire, label: &str) {
    let msgs = w.simple("SELECT 1");
    if first_error(&msgs).is_some() || !msgs.iter().any(|m| m.tag == b'D') {
        lab.fail(format!("{label}: raw session unusable: {msgs:?}"));
    }
}

#[tokio::test]
async fn copy_from_stdin_in_the_simple_protocol_never_starts() {
    let mut lab = Lab::new().await;
    for sql in [
        "COPY victim FROM STDIN",
        "COPY victim (id, v) FROM STDIN WITH (FORMAT csv)",
        "SELECT 1; COPY victim FROM STDIN",
    ] {
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        w.send(&query(sql.as_bytes()));
        let mut msgs = Vec::new();
        loop {
            let m = w.next();
            let tag = m.tag;
            msgs.push(m);
            if tag == b'G' {
                // The COPY started: show what it can do, then report.
                w.send(&copy_data(b"999\tsmuggled\n"));
                w.send(&copy_done());
            }
            if tag == b'Z' {
                break;
            }
        }
        if msgs.iter().any(|m| m.tag == b'G') {
            lab.fail(format!("[raw simple] {sql}: CopyInResponse: {msgs:?}"));
        }
        let label = format!("[raw simple] {sql}");
        lab.judge_code(&label, Refused, outcome(&msgs));
        lab.check_after(&label, &before).await;
        raw_usable(&mut lab, &mut w, &label);
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    lab.finish();
}

/// Text arguments of a FunctionCall.
type Args = Vec<Option<Vec<u8>>>;

/// The OID of a function, by its signature.
async fn oid_of(lab: &Lab, signature: &str) -> u32 {
    lab.admin
        .query_one(&format!("SELECT '{signature}'::regprocedure::oid"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn function_call_messages_are_refused() {
    let mut lab = Lab::new().await;
    let lo_creat = oid_of(&lab, "lo_creat(integer)").await;
    let terminate_oid = oid_of(&lab, "pg_terminate_backend(integer,bigint)").await;
    let nextval = oid_of(&lab, "nextval(regclass)").await;
    let seq: u32 = lab
        .admin
        .query_one(&format!("SELECT '{}.seq'::regclass::oid", lab.schema), &[])
        .await
        .unwrap()
        .get(0);
    let pid = lab.bystander_pid.to_string();
    let calls: Vec<(&str, u32, Args)> = vec![
        ("lo_creat(-1)", lo_creat, vec![Some(b"-1".to_vec())]),
        (
            "pg_terminate_backend(bystander)",
            terminate_oid,
            vec![Some(pid.into_bytes()), Some(b"0".to_vec())],
        ),
        (
            "nextval(seq)",
            nextval,
            vec![Some(seq.to_string().into_bytes())],
        ),
    ];
    for (what, oid, args) in calls {
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        w.send(&function_call(oid, &args));
        let msgs = w.until(b'Z', 1);
        let label = format!("[FunctionCall] {what}");
        if msgs.iter().any(|m| m.tag == b'V') {
            lab.fail(format!("{label}: FunctionCallResponse: {msgs:?}"));
        }
        lab.judge_code(&label, Refused, outcome(&msgs));
        if msgs.last().map(|m| m.body.as_slice()) != Some(b"I") {
            lab.fail(format!("{label}: not idle afterwards: {msgs:?}"));
        }
        lab.check_after(&label, &before).await;
        raw_usable(&mut lab, &mut w, &label);
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    lab.finish();
}

#[tokio::test]
async fn pg_sleep_is_refused_not_slept() {
    let mut lab = Lab::new().await;
    for sql in [
        "SELECT pg_sleep(20)",
        "SELECT 1 FROM pg_sleep(20)",
        "SELECT pg_sleep_for('20 seconds')",
        "SELECT pg_sleep_until(now() + interval '20 seconds')",
    ] {
        let before = lab.fingerprint().await;
        let started = Instant::now();
        let r = lab.attacker.simple_query(sql).await.map(drop);
        let simple = started.elapsed();
        lab.judge(&format!("[simple] {sql}"), Refused, r);
        let started = Instant::now();
        let r = lab.attacker.query(sql, &[]).await.map(drop);
        let extended = started.elapsed();
        lab.judge(&format!("[extended] {sql}"), Refused, r);
        for (how, took) in [("simple", simple), ("extended", extended)] {
            // A hold and its rejection take well under this, even on a
            // loaded machine; a sleep takes twice as long.
            if took > Duration::from_secs(10) {
                lab.fail(format!("[{how}] {sql}: took {took:?}: it slept"));
            }
        }
        lab.check_after(sql, &before).await;
        lab.attempts += 2;
    }
    lab.finish();
}

/// Whether `pid` is still running its pg_sleep(60).
async fn is_active(lab: &Lab, pid: i32) -> bool {
    lab.admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(60)%'",
            &[&pid],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

#[tokio::test]
async fn a_busy_bystander_is_neither_cancelled_nor_terminated() {
    let mut lab = Lab::new().await;
    let busy = connect(&direct_conninfo("postgres", DB)).await;
    let busy_pid: i32 = busy
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let token = busy.cancel_token();
    let running = tokio::spawn(async move {
        let r = busy.simple_query("SELECT pg_sleep(60)").await;
        (r.map(drop), busy)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_active(&lab, busy_pid).await {
        assert!(Instant::now() < deadline, "the bystander never got busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for sql in [
        "SELECT pg_cancel_backend({busy})",
        "SELECT pg_terminate_backend({busy})",
        "SELECT pg_terminate_backend({busy}, 1000)",
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = {busy}",
    ] {
        let sql = sql.replace("{busy}", &busy_pid.to_string());
        let r = lab.attacker.simple_query(&sql).await.map(drop);
        lab.judge(&format!("[simple] {sql}"), Refused, r);
        let r = lab.attacker.query(&sql, &[]).await.map(drop);
        lab.judge(&format!("[extended] {sql}"), Refused, r);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !is_active(&lab, busy_pid).await {
            lab.fail(format!("{sql}: the bystander's query stopped"));
        }
        lab.attempts += 2;
    }
    let r = lab
        .attacker
        .query("SELECT pg_cancel_backend($1)", &[&busy_pid])
        .await
        .map(drop);
    lab.judge("[extended] SELECT pg_cancel_backend($1)", Refused, r);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if !is_active(&lab, busy_pid).await {
        lab.fail("pg_cancel_backend($1): the bystander's query stopped".into());
    }
    // The observation can fail: a real cancel does stop it.
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (r, busy) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the bystander's query ends when cancelled")
        .unwrap();
    assert_eq!(
        r.unwrap_err().code().map(|c| c.code()),
        Some("57014"),
        "a real cancel"
    );
    busy.simple_query("SELECT 1").await.unwrap();
    lab.finish();
}

#[tokio::test]
async fn locks_are_not_taken_inside_a_transaction_block() {
    let mut lab = Lab::new().await;
    let s = lab.schema.clone();
    for sql in [
        "LOCK TABLE victim IN ACCESS EXCLUSIVE MODE",
        "LOCK victim",
        "SELECT * FROM victim WHERE id = 1 FOR UPDATE",
        "SELECT * FROM victim WHERE id = 1 FOR NO KEY UPDATE",
        "SELECT 1 FROM victim FOR KEY SHARE",
        "SELECT pg_advisory_xact_lock(9)",
    ] {
        let label = format!("[in BEGIN] {sql}");
        lab.attacker.batch_execute("BEGIN").await.unwrap();
        let r = lab.attacker.simple_query(sql).await.map(drop);
        lab.judge(&label, Refused, r);
        // Held now, while the attacker's transaction is still open?
        let held: i64 = lab
            .admin
            .query_one(
                &format!(
                    "SELECT count(*) FROM pg_locks WHERE pid = $1
                     AND (relation = '{s}.victim'::regclass OR locktype = 'advisory')"
                ),
                &[&lab.attacker_pid],
            )
            .await
            .unwrap()
            .get(0);
        if held != 0 {
            lab.fail(format!("{label}: {held} lock(s) held"));
        }
        // Another session can lock the same row at once.
        let r = lab
            .admin
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '1s';
                 SELECT * FROM {s}.victim WHERE id = 1 FOR UPDATE NOWAIT; ROLLBACK"
            ))
            .await;
        if let Err(e) = r {
            lab.fail(format!("{label}: the row is locked: {e}"));
            let _ = lab.admin.batch_execute("ROLLBACK").await;
        }
        // The transaction failed on both sides; ROLLBACK recovers it.
        match lab.attacker.simple_query("SELECT 1").await {
            Err(e) if e.code().map(|c| c.code()) == Some("25P02") => {}
            other => lab.fail(format!("{label}: SELECT 1 after it: {other:?}")),
        }
        lab.attacker.batch_execute("ROLLBACK").await.unwrap();
        let before = lab.fingerprint().await;
        lab.check_after(&label, &before).await;
        lab.attempts += 1;
    }
    lab.finish();
}

/// The extended protocol remembers a statement's facts under its name. If
/// the name is taken, PostgreSQL refuses the second Parse (42P05) and keeps
/// the first statement: executing the name runs the first statement, and
/// it must be decided as that one.
#[tokio::test]
async fn a_reused_statement_name_does_not_launder_a_write() {
    let mut lab = Lab::new().await;
    for write in [
        "DELETE FROM victim WHERE id > 0",
        "SELECT pg_advisory_lock(4711)",
        "SELECT nextval('seq')",
        // (A set_config whose name is not a constant is refused at Parse
        // now: it may be any setting, read-only ones included.)
        "SELECT pg_cancel_backend(0)",
    ] {
        let label = format!("[reused name] {write}");
        let mut w = lab.raw_attacker(&[]);
        let before = lab.fingerprint().await;
        // The write, prepared: it needs approval, which is asked at
        // Execute, so the Parse itself passes.
        w.send(&[parse(b"s1", write.as_bytes(), &[]), sync()].concat());
        let first = w.until(b'Z', 1);
        assert_eq!(tags(&first), "1Z", "{label}: Parse of the write: {first:?}");
        // The same name for a read: PostgreSQL keeps the write.
        w.send(&[parse(b"s1", b"SELECT 1", &[]), sync()].concat());
        let second = w.until(b'Z', 1);
        assert_eq!(
            first_error(&second).and_then(Msg::code).as_deref(),
            Some("42P05"),
            "{label}: the second Parse: {second:?}"
        );
        // Executing the name.
        w.send(&[bind(b"", b"s1", &[], 0), execute(b"", 0), sync()].concat());
        let run = w.until(b'Z', 1);
        lab.judge_code(&label, Refused, outcome(&run));
        // What the session now says about the read-only default.
        let ro = w.values("SHOW default_transaction_read_only");
        lab.check_after(&label, &before).await;
        let after_ro = w.values("SHOW default_transaction_read_only");
        if ro != after_ro {
            lab.fail(format!(
                "{label}: read-only default {ro:?} then {after_ro:?}"
            ));
        }
        raw_usable(&mut lab, &mut w, &label);
        lab.finish_raw(w).await;
        lab.attempts += 1;
    }
    // The same inside a transaction block, where the read-only backstop
    // does not apply.
    let label = "[reused name, in BEGIN] DELETE FROM victim WHERE id > 10";
    let mut w = lab.raw_attacker(&[]);
    let before = lab.fingerprint().await;
    w.send(
        &[
            parse(b"s2", b"DELETE FROM victim WHERE id > 10", &[]),
            sync(),
        ]
        .concat(),
    );
    assert_eq!(tags(&w.until(b'Z', 1)), "1Z");
    w.send(&[parse(b"s2", b"SELECT 1", &[]), sync()].concat());
    assert_eq!(tags(&w.until(b'Z', 1)), "EZ");
    w.simple("BEGIN");
    w.send(&[bind(b"", b"s2", &[], 0), execute(b"", 0), sync()].concat());
    let run = w.until(b'Z', 1);
    lab.judge_code(label, Refused, outcome(&run));
    w.simple("COMMIT");
    lab.check_after(label, &before).await;
    raw_usable(&mut lab, &mut w, label);
    lab.finish_raw(w).await;
    lab.attempts += 1;
    lab.finish();
}

/// With `standard_conforming_strings` off, a backslash escapes a quote:
/// `'a\' , ' ; DELETE ...; --'` is one string literal to a parser that
/// assumes the default (on), and a SELECT followed by a DELETE to the
/// server. Either the setting is refused, or what the server will execute
/// is what gets decided.
#[tokio::test]
async fn standard_conforming_strings_off_does_not_hide_a_statement() {
    let mut lab = Lab::new().await;
    let set = lab
        .attacker
        .simple_query("SET standard_conforming_strings = off")
        .await;
    let hidden = if set.is_ok() { Refused } else { Allowed };
    // The last two chain: if the read-only default can be switched off,
    // the read-only backstop no longer stops the DELETE after it.
    for inner in [
        "SELECT pg_advisory_lock(4712)",
        "DELETE FROM victim",
        "SELECT set_config($$default_transaction_read_only$$, $$off$$, false)",
        "DELETE FROM victim WHERE id < 10",
    ] {
        lab.simple(&format!("SELECT 'a\\' , ' ; {inner}; --'"), hidden)
            .await;
    }
    // Inside a transaction block the read-only backstop does not apply.
    lab.in_block(
        "SELECT 'a\\' , ' ; DELETE FROM victim WHERE id > 15; --'",
        hidden,
    )
    .await;
    // The same through a startup parameter, which no SET statement shows.
    for (param, value) in [
        ("standard_conforming_strings", "off"),
        ("options", "-c standard_conforming_strings=off"),
    ] {
        let options = format!("-c search_path={}", lab.schema);
        let extra: Vec<(&str, &str)> = if param == "options" {
            vec![(
                "options",
                Box::leak(format!("{options} {value}").into_boxed_str()),
            )]
        } else {
            vec![("options", options.as_str()), (param, value)]
        };
        let mut w = lab.raw_attacker(&extra);
        let scs = w.values("SHOW standard_conforming_strings");
        let expect = if scs == ["off"] { Refused } else { Allowed };
        for inner in ["SELECT pg_advisory_lock(4713)", "DELETE FROM victim"] {
            let sql = format!("SELECT 'a\\' , ' ; {inner}; --'");
            let label = format!("[startup {param}={value}] {sql}");
            let before = lab.fingerprint().await;
            let msgs = w.simple(&sql);
            lab.judge_code(&label, expect, outcome(&msgs));
            lab.check_after(&label, &before).await;
            raw_usable(&mut lab, &mut w, &label);
            lab.attempts += 1;
        }
        lab.finish_raw(w).await;
    }
    lab.finish();
}

/// The shipped policy denies changing the role. A startup parameter (or
/// `-c` in `options`) sets it as well as `SET ROLE` does.
#[tokio::test]
async fn startup_parameters_do_not_change_the_role() {
    let mut lab = Lab::new().await;
    let other = lab.other_role.clone();
    let options = format!("-c search_path={} -c role={other}", lab.schema);
    let search = format!("-c search_path={}", lab.schema);
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("options -c role={other}"),
            vec![("options", options.as_str())],
        ),
        (
            format!("role={other}"),
            vec![("options", search.as_str()), ("role", other.as_str())],
        ),
    ];
    for (label, params) in cases {
        let mut w = Wire::connect(lab.proxy.addr);
        let mut all = vec![("user", "postgres"), ("database", DB)];
        all.extend(params);
        let msgs = w.startup(&all);
        lab.attempts += 1;
        if let Some(e) = first_error(&msgs) {
            // Refusing the session is fine.
            assert!(e.code().is_some(), "{label}: {msgs:?}");
            continue;
        }
        let who = w.values("SELECT current_user::text || '/' || session_user::text");
        if who != ["postgres/postgres"] {
            lab.fail(format!("[startup {label}] the session runs as {who:?}"));
        }
        w.send(&terminate());
    }
    lab.finish();
}

/// Statements that parse as reads but make PostgreSQL run user code: a
/// function called in attribute notation (`v.f` is `f(v)`), views, a
/// domain's CHECK, an overload of a built-in's name, an operator with a
/// built-in's symbol, and a search_path that puts a schema before
/// pg_catalog. The code takes an advisory lock (which a read-only
/// transaction does not prevent) or deletes (which it does).
#[tokio::test]
async fn user_code_behind_read_syntax_changes_nothing() {
    // A database of its own: the overloads and the operator made here
    // would hold other tests' reads.
    let db = unique("uc");
    connect(&direct_conninfo("postgres", DB))
        .await
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    let mut lab = Lab::in_database(common::lab::shipped_proxy(), &db).await;
    let s = lab.schema.clone();
    let lock_fn = |name: &str, args: &str, ret: &str, key: u32, value: &str| {
        format!(
            "CREATE FUNCTION {s}.{name}({args}) RETURNS {ret} VOLATILE LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_advisory_lock({key}); RETURN {value}; END $$;"
        )
    };
    let setup = [
        lock_fn("grab", &format!("{s}.victim"), "int", 4801, "1"),
        format!(
            "CREATE FUNCTION {s}.wipe({s}.victim) RETURNS int VOLATILE LANGUAGE plpgsql AS
             $$ BEGIN DELETE FROM {s}.victim; RETURN 1; END $$;"
        ),
        format!("CREATE VIEW {s}.wiped AS SELECT {s}.evil() AS n;"),
        format!("CREATE VIEW {s}.grabbed AS SELECT pg_advisory_lock(4802)::text AS n;"),
        lock_fn("grab_check", "int", "bool", 4803, "true"),
        format!("CREATE DOMAIN {s}.grabby AS int CHECK ({s}.grab_check(VALUE));"),
        lock_fn("lower", "integer", "text", 4804, "'x'"),
        lock_fn("upper", "text", "text", 4805, "'x'"),
        lock_fn(
            "grab_eq",
            &format!("{s}.victim, integer"),
            "bool",
            4806,
            "true",
        ),
        format!(
            "CREATE OPERATOR {s}.= (LEFTARG = {s}.victim, RIGHTARG = integer,
             FUNCTION = {s}.grab_eq);"
        ),
    ]
    .concat();
    lab.admin.batch_execute(&setup).await.expect("user code");
    // Made past airlock: the proxy sees it once it has polled the catalog.
    lab.proxy.catalog_caught_up(&lab.admin, &lab.db).await;
    for (sql, expect) in [
        ("SELECT v.grab FROM victim v WHERE id = 1", Refused),
        ("SELECT x.wipe FROM victim x", RefusedOrReadOnly),
        ("SELECT * FROM wiped", RefusedOrReadOnly),
        ("SELECT * FROM grabbed", Refused),
        ("TABLE grabbed", Refused),
        ("SELECT table_to_xml('grabbed', true, false, '')", Refused),
        ("SELECT 1::grabby", Refused),
        ("SELECT lower(1)", Refused),
        ("SELECT count(*) FROM victim x WHERE x = 1", Refused),
    ] {
        lab.simple(sql, expect).await;
        lab.extended(sql, &[], expect).await;
    }
    // Inside a transaction block the read-only backstop does not apply.
    lab.in_block("SELECT * FROM wiped", RefusedOrReadOnly).await;
    lab.in_block(
        "SELECT x.wipe FROM victim x WHERE id = 1",
        RefusedOrReadOnly,
    )
    .await;
    // A schema before pg_catalog on the search path would make the
    // same-signature upper() in the lab's schema win over the built-in. The
    // shipped policy refuses such a SET; whether it runs or not, a name a
    // user function shares is not proven to be the built-in's.
    let _ = lab
        .attacker
        .simple_query(&format!("SET search_path = {s}, pg_catalog"))
        .await;
    lab.simple("SELECT upper('a')", Refused).await;
    lab.extended("SELECT upper('a')", &[], Refused).await;
    // Names no user code shares still pass.
    lab.simple("SELECT count(*) FROM victim v WHERE v.id > 1", Allowed)
        .await;
    lab.finish();
}

/// The proxy reads SQL in the session's client_encoding, which it learns
/// from the server's ParameterStatus. A client that pipelines a change of
/// encoding and a statement gets the statement decided in the old encoding
/// and run in the new one. In LATIN1, `E'\x95\'` is a string whose quote is
/// escaped; in SJIS, 0x95 0x5c is one character and the quote ends the
/// string, so what follows runs.
#[tokio::test]
async fn a_pipelined_client_encoding_change_does_not_hide_a_statement() {
    let mut lab = Lab::new().await;
    let mut w = lab.raw_attacker(&[]);
    // The third follows from the second: with the read-only default off,
    // the backstop no longer stops the DELETE. The last runs in a block.
    for (inner, block) in [
        ("SELECT pg_advisory_lock(4720)", false),
        (
            "SELECT set_config($$default_transaction_read_only$$, $$off$$, false)",
            false,
        ),
        ("DELETE FROM victim WHERE id > 12", false),
        ("DELETE FROM victim WHERE id < 5", true),
    ] {
        let label = format!("[LATIN1 -> SJIS pipelined, in BEGIN: {block}] {inner}");
        let msgs = w.simple("SET client_encoding = 'LATIN1'");
        assert!(first_error(&msgs).is_none(), "{msgs:?}");
        let before = lab.fingerprint().await;
        if block {
            w.simple("BEGIN");
        }
        let mut attack = b"SELECT E'\x95\x5c' ; ".to_vec();
        attack.extend_from_slice(inner.as_bytes());
        attack.extend_from_slice(b"; --'");
        w.send(&[query(b"SET client_encoding = 'SJIS'"), query(&attack)].concat());
        let msgs = w.until(b'Z', 2);
        let second = msgs
            .iter()
            .position(|m| m.tag == b'Z')
            .map(|i| &msgs[i + 1..])
            .unwrap_or_default();
        lab.judge_code(&label, Refused, outcome(second));
        if block {
            w.simple("COMMIT");
        }
        lab.check_after(&label, &before).await;
        raw_usable(&mut lab, &mut w, &label);
        lab.attempts += 1;
    }
    lab.finish_raw(w).await;
    lab.finish();
}
