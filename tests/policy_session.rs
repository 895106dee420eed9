//! What a refusal looks like on the wire, and what it does to the session:
//! a denial (custom policy) outside and inside a transaction block, in the
//! simple protocol and in extended-protocol pipelines with several Syncs;
//! a statement needing approval under the shipped policy, stopped at
//! Execute and not at Parse; and text PostgreSQL's grammar rejects. Every
//! check of what was committed is made straight against PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use airlock::policy::Policy;
use common::lab::{Lab, DB};
use common::rawpg::*;
use common::*;

const DENY_MESSAGE: &str = "the forbidden tables are off limits";
const ROLE_MESSAGE: &str = "no role changes through this proxy";

/// Everything allowed except the `forbidden*` tables and role changes.
fn deny_policy() -> Policy {
    let rules = format!(
        r#"
[[rule]]
name = "forbidden-tables"
tables = ["forbidden*"]
action = "deny"
message = "{DENY_MESSAGE}"

[[rule]]
name = "no-role-changes"
risks = ["role_change"]
action = "deny"
message = "{ROLE_MESSAGE}"

[[rule]]
name = "everything-else"
action = "allow"
"#
    );
    Policy::from_sources(&[("x.toml", &rules)]).expect("policy")
}

fn deny_proxy() -> TestProxy {
    let mut config = airlock::Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.shutdown_timeout = Duration::from_secs(2);
    TestProxy::with_policy(config, Some(deny_policy()))
}

/// Runs `sql` straight against PostgreSQL; returns the first column of
/// every row.
fn direct(sql: &str) -> Vec<String> {
    let mut w = Wire::open(
        format!("127.0.0.1:{}", pg().port).parse().unwrap(),
        "postgres",
        DB,
    );
    let v = w.values(sql);
    w.send(&terminate());
    v
}

/// An allowed table `ok_*` with rows 1 and 2, and a `forbidden_*` table
/// with row 1.
fn tables() -> (String, String) {
    let ok = unique("ok");
    let forbidden = unique("forbidden");
    direct(&format!(
        "CREATE TABLE {ok} (id int PRIMARY KEY); INSERT INTO {ok} VALUES (1), (2);
         CREATE TABLE {forbidden} (id int PRIMARY KEY); INSERT INTO {forbidden} VALUES (1);"
    ));
    (ok, forbidden)
}

fn ids(table: &str) -> Vec<String> {
    direct(&format!("SELECT id FROM {table} ORDER BY id"))
}

/// The transaction status of the ReadyForQuery ending `msgs`.
fn status(msgs: &[Msg]) -> char {
    let z = msgs.last().expect("messages");
    assert_eq!(z.tag, b'Z', "{msgs:?}");
    z.body[0] as char
}

/// Asserts the one error in `msgs` is a denial by `rule` with `message`.
fn assert_denied(msgs: &[Msg], rule: &str, message: &str) {
    let errors: Vec<&Msg> = msgs.iter().filter(|m| m.is_error()).collect();
    assert_eq!(errors.len(), 1, "one ErrorResponse: {msgs:?}");
    let e = errors[0];
    assert_eq!(e.code().as_deref(), Some("42501"), "{e:?}");
    assert_eq!(e.field(b'S').as_deref(), Some("ERROR"), "{e:?}");
    assert_eq!(e.field(b'M').as_deref(), Some(message), "{e:?}");
    let detail = e.field(b'D').unwrap_or_default();
    assert!(
        detail.contains(rule),
        "the rule {rule} in the detail: {e:?}"
    );
}

/// The state of backend `pid` as pg_stat_activity shows it.
fn backend_state(pid: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = direct(&format!(
            "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = {pid}"
        ));
        // The state is reported as the backend goes idle; give it a moment.
        if v.first().is_some_and(|s| s != "active") || Instant::now() > deadline {
            return v.join(",");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_denial_outside_a_transaction_is_42501_with_the_rules_message() {
    let proxy = deny_proxy();
    let (ok, forbidden) = tables();
    let mut w = Wire::open(proxy.addr, "postgres", DB);
    for sql in [
        format!("SELECT * FROM {forbidden}"),
        format!("DELETE FROM {forbidden}"),
        format!("SELECT 1; DELETE FROM {forbidden}"),
        format!("INSERT INTO {ok} SELECT id + 10 FROM {forbidden}"),
    ] {
        let msgs = w.simple(&sql);
        assert_eq!(tags(&msgs), "EZ", "{sql}: {msgs:?}");
        assert_denied(&msgs, "forbidden-tables", DENY_MESSAGE);
        assert_eq!(status(&msgs), 'I', "{sql}");
    }
    let msgs = w.simple("SET ROLE postgres");
    assert_denied(&msgs, "no-role-changes", ROLE_MESSAGE);
    assert_eq!(status(&msgs), 'I');
    assert_eq!(
        w.values("SELECT current_user::text || '/' || session_user::text"),
        ["postgres/postgres"]
    );
    assert_eq!(ids(&forbidden), ["1"]);
    assert_eq!(ids(&ok), ["1", "2"]);
    // The session goes on.
    assert_eq!(w.values(&format!("SELECT count(*) FROM {ok}")), ["2"]);
}

#[test]
fn a_denial_inside_begin_fails_the_transaction_on_both_sides() {
    let proxy = deny_proxy();
    let (ok, forbidden) = tables();
    for end in ["ROLLBACK", "COMMIT"] {
        let mut w = Wire::open(proxy.addr, "postgres", DB);
        assert_eq!(status(&w.simple("BEGIN")), 'T');
        let msgs = w.simple(&format!("INSERT INTO {ok} VALUES (3)"));
        assert_eq!(tags(&msgs), "CZ", "{msgs:?}");
        assert_eq!(status(&msgs), 'T');
        let msgs = w.simple(&format!("DELETE FROM {forbidden}"));
        assert_eq!(tags(&msgs), "EZ", "{msgs:?}");
        assert_denied(&msgs, "forbidden-tables", DENY_MESSAGE);
        assert_eq!(status(&msgs), 'E', "the client sees a failed transaction");
        // The upstream transaction failed too.
        assert_eq!(
            backend_state(w.pid),
            "idle in transaction (aborted)",
            "the server's side of the transaction"
        );
        for _ in 0..2 {
            let msgs = w.simple("SELECT 1");
            assert_eq!(
                first_error(&msgs).and_then(Msg::code).as_deref(),
                Some("25P02"),
                "{msgs:?}"
            );
            assert_eq!(status(&msgs), 'E');
        }
        // COMMIT of a failed transaction is a ROLLBACK.
        let msgs = w.simple(end);
        assert!(first_error(&msgs).is_none(), "{end}: {msgs:?}");
        assert_eq!(status(&msgs), 'I', "{end}");
        assert_eq!(ids(&ok), ["1", "2"], "the INSERT before the denial ({end})");
        assert_eq!(ids(&forbidden), ["1"]);
        assert_eq!(w.values("SELECT 1"), ["1"]);
        w.send(&terminate());
    }
}

#[tokio::test]
async fn a_denial_inside_a_tokio_postgres_transaction() {
    let proxy = deny_proxy();
    let (ok, forbidden) = tables();
    let mut client = proxy.connect("postgres", DB).await;
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {ok} VALUES ($1)"), &[&4i32])
        .await
        .unwrap();
    let e = tx
        .execute(&format!("DELETE FROM {forbidden} WHERE id = $1"), &[&1i32])
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert_eq!(db.message(), DENY_MESSAGE);
    assert!(db.detail().unwrap_or_default().contains("forbidden-tables"));
    let e = tx.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("25P02"));
    // A COMMIT of the failed transaction is answered as a rollback.
    tx.commit().await.unwrap();
    assert_eq!(ids(&ok), ["1", "2"]);
    assert_eq!(ids(&forbidden), ["1"]);
    let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

/// Parse/Bind/Execute of an allowed INSERT, then a denied statement's
/// Parse/Bind/Execute, then Sync.
fn insert_then_denied(ok: &str, forbidden: &str, id: i32) -> Vec<u8> {
    [
        parse(
            b"",
            format!("INSERT INTO {ok} VALUES ({id})").as_bytes(),
            &[],
        ),
        bind(b"", b"", &[], 0),
        execute(b"", 0),
        parse(b"", format!("DELETE FROM {forbidden}").as_bytes(), &[]),
        bind(b"", b"", &[], 0),
        execute(b"", 0),
        sync(),
    ]
    .concat()
}

/// Parse/Bind/Execute of an INSERT of `id`, then Sync.
fn insert(ok: &str, id: i32) -> Vec<u8> {
    [
        parse(
            b"",
            format!("INSERT INTO {ok} VALUES ({id})").as_bytes(),
            &[],
        ),
        bind(b"", b"", &[], 0),
        execute(b"", 0),
        sync(),
    ]
    .concat()
}

#[test]
fn a_denial_in_a_pipeline_discards_to_sync_and_rolls_back_the_batch() {
    let proxy = deny_proxy();
    let (ok, forbidden) = tables();
    let mut w = Wire::open(proxy.addr, "postgres", DB);
    w.send(&insert_then_denied(&ok, &forbidden, 5));
    let msgs = w.until(b'Z', 1);
    // ParseComplete, BindComplete, CommandComplete of the INSERT; one
    // error for the denied Parse; nothing for the discarded Bind and
    // Execute; ReadyForQuery.
    assert_eq!(tags(&msgs), "12CEZ", "{msgs:?}");
    assert_eq!(msgs[2].body, b"INSERT 0 1\0", "the INSERT ran in the batch");
    assert_denied(&msgs, "forbidden-tables", DENY_MESSAGE);
    assert_eq!(status(&msgs), 'I');
    assert_eq!(w.pending_bytes(), 0, "nothing more: {msgs:?}");
    assert!(w.quiet_for(Duration::from_millis(200)).is_ok());
    // The implicit transaction of the batch was rolled back, as PostgreSQL
    // does when a later statement of the batch fails.
    assert_eq!(ids(&ok), ["1", "2"]);
    assert_eq!(ids(&forbidden), ["1"]);

    // Three batches, the denial in the middle one: the others run.
    let mut pipeline = insert(&ok, 6);
    pipeline.extend(insert_then_denied(&ok, &forbidden, 7));
    pipeline.extend(insert(&ok, 8));
    w.send(&pipeline);
    let msgs = w.until(b'Z', 3);
    assert_eq!(tags(&msgs), "12CZ12CEZ12CZ", "{msgs:?}");
    assert_denied(&msgs, "forbidden-tables", DENY_MESSAGE);
    assert!(msgs
        .iter()
        .filter(|m| m.tag == b'Z')
        .all(|z| z.body == b"I"));
    assert_eq!(ids(&ok), ["1", "2", "6", "8"]);
    assert_eq!(ids(&forbidden), ["1"]);

    // Inside BEGIN the batch fails the transaction block instead.
    assert_eq!(status(&w.simple("BEGIN")), 'T');
    w.send(&insert_then_denied(&ok, &forbidden, 9));
    let msgs = w.until(b'Z', 1);
    assert_eq!(tags(&msgs), "12CEZ", "{msgs:?}");
    assert_eq!(status(&msgs), 'E');
    w.send(&insert(&ok, 10));
    let msgs = w.until(b'Z', 1);
    assert_eq!(
        first_error(&msgs).and_then(Msg::code).as_deref(),
        Some("25P02"),
        "{msgs:?}"
    );
    assert_eq!(status(&w.simple("ROLLBACK")), 'I');
    assert_eq!(ids(&ok), ["1", "2", "6", "8"]);
    assert_eq!(w.values("SELECT 1"), ["1"]);
}

#[test]
fn a_denied_parse_is_answered_at_flush_without_waiting_for_sync() {
    let proxy = deny_proxy();
    let (ok, forbidden) = tables();
    let mut w = Wire::open(proxy.addr, "postgres", DB);
    w.send(
        &[
            parse(
                b"s_denied",
                format!("DELETE FROM {forbidden}").as_bytes(),
                &[],
            ),
            describe(b'S', b"s_denied"),
            flush(),
        ]
        .concat(),
    );
    let e = w.next();
    assert!(e.is_error(), "{e:?}");
    assert_denied(std::slice::from_ref(&e), "forbidden-tables", DENY_MESSAGE);
    assert!(
        w.quiet_for(Duration::from_millis(200)).is_ok(),
        "discarding"
    );
    // Discarded until Sync: the Bind and Execute get nothing.
    w.send(&[bind(b"", b"s_denied", &[], 0), execute(b"", 0), sync()].concat());
    let msgs = w.until(b'Z', 1);
    assert_eq!(tags(&msgs), "Z", "{msgs:?}");
    // The statement was never prepared upstream.
    w.send(&[describe(b'S', b"s_denied"), sync()].concat());
    let msgs = w.until(b'Z', 1);
    assert_eq!(
        first_error(&msgs).and_then(Msg::code).as_deref(),
        Some("26000"),
        "{msgs:?}"
    );
    assert_eq!(ids(&forbidden), ["1"]);
    assert_eq!(w.values(&format!("SELECT count(*) FROM {ok}")), ["2"]);
}

/// Under the shipped policy a statement that needs approval is prepared
/// and described like any other; it is stopped when executed (held, and
/// here rejected by the lab's reviewer).
#[tokio::test]
async fn a_statement_needing_approval_is_stopped_at_execute_not_at_parse() {
    let mut lab = Lab::new().await;
    let mut w = Wire::open(lab.proxy.addr, "postgres", DB);
    let sql = format!("DELETE FROM {}.victim WHERE id = $1", lab.schema);
    w.send(
        &[
            parse(b"del", sql.as_bytes(), &[23]),
            describe(b'S', b"del"),
            sync(),
        ]
        .concat(),
    );
    let msgs = w.until(b'Z', 1);
    assert_eq!(tags(&msgs), "1tnZ", "Parse and Describe succeed: {msgs:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(lab.rejecter.count(), 0, "nothing held at Parse");
    let before = lab.fingerprint().await;
    w.send(
        &[
            bind(b"", b"del", &[Some(b"1".to_vec())], 0),
            execute(b"", 0),
            sync(),
        ]
        .concat(),
    );
    let msgs = w.until(b'Z', 1);
    let e = first_error(&msgs).expect("refused");
    assert_eq!(e.code().as_deref(), Some("42501"), "{msgs:?}");
    assert!(!msgs.iter().any(|m| m.tag == b'C'), "it ran: {msgs:?}");
    assert_eq!(status(&msgs), 'I');
    assert_eq!(lab.rejecter.count(), 1, "held at Execute");
    assert_eq!(
        lab.rejecter.held.lock().unwrap()[0],
        sql,
        "the reviewer saw the SQL"
    );
    lab.check_after("DELETE at Execute", &before).await;
    // The prepared statement is still there; the session goes on.
    w.send(&[describe(b'S', b"del"), sync()].concat());
    assert_eq!(tags(&w.until(b'Z', 1)), "tnZ");
    assert_eq!(w.values("SELECT 1"), ["1"]);
    lab.attempts += 1;
    lab.finish();
}

/// Reads to the `n`th ReadyForQuery, at most `within`; whatever came, and
/// whether it all came.
fn until_ready(w: &mut Wire, n: usize, within: Duration) -> (Vec<Msg>, bool) {
    let deadline = Instant::now() + within;
    let mut msgs = Vec::new();
    let mut seen = 0;
    while seen < n {
        match w.read(deadline) {
            Read1::Msg(m) => {
                seen += usize::from(m.tag == b'Z');
                msgs.push(m);
            }
            _ => return (msgs, false),
        }
    }
    (msgs, true)
}

#[test]
fn unparseable_sql_gets_the_syntax_error_and_the_session_goes_on() {
    let proxy = common::lab::shipped_proxy();
    let reviewer = common::lab::Rejecter::start(proxy.admin);
    let mut w = Wire::open(proxy.addr, "postgres", DB);
    let msgs = w.simple("SELEC 1");
    assert_eq!(tags(&msgs), "EZ", "{msgs:?}");
    let e = first_error(&msgs).unwrap();
    assert_eq!(e.code().as_deref(), Some("42601"), "{e:?}");
    assert!(
        e.field(b'M').unwrap_or_default().contains("syntax error"),
        "{e:?}"
    );
    assert_eq!(status(&msgs), 'I');
    assert_eq!(w.values("SELECT 1"), ["1"]);

    // Inside a transaction block it fails the block, like PostgreSQL.
    assert_eq!(status(&w.simple("BEGIN")), 'T');
    let msgs = w.simple("SELEC 1");
    assert_eq!(
        first_error(&msgs).and_then(Msg::code).as_deref(),
        Some("42601")
    );
    assert_eq!(status(&msgs), 'E');
    assert_eq!(status(&w.simple("ROLLBACK")), 'I');
    assert_eq!(w.values("SELECT 3"), ["3"]);
    assert_eq!(reviewer.count(), 0, "nothing was held");
}

/// In the extended protocol a refused Parse (a syntax error, a denial) is
/// answered with one error, and PostgreSQL discards everything up to Sync:
/// the Bind and Execute after it (as pgjdbc sends them, in one batch) must
/// get nothing — in particular they must not be held for review as
/// statements the proxy did not see prepared.
#[test]
fn after_a_refused_parse_nothing_is_held_until_sync() {
    let proxy = common::lab::shipped_proxy();
    let reviewer = common::lab::Rejecter::start(proxy.admin);
    let mut w = Wire::open(proxy.addr, "postgres", DB);
    let mut problems = Vec::new();
    for (sql, code) in [
        ("SELEC 1", "42601"),
        ("SET ROLE postgres", "42501"),
        ("SET default_transaction_read_only = off", "42501"),
    ] {
        for name in [&b""[..], b"S_1"] {
            let held_before = reviewer.count();
            w.send(
                &[
                    parse(name, sql.as_bytes(), &[]),
                    bind(b"", name, &[], 0),
                    describe(b'P', b""),
                    execute(b"", 0),
                    sync(),
                ]
                .concat(),
            );
            let (msgs, complete) = until_ready(&mut w, 1, Duration::from_secs(5));
            let what = format!("{sql} (statement {:?})", String::from_utf8_lossy(name));
            if !complete || tags(&msgs) != "EZ" {
                problems.push(format!("{what}: expected E Z, got {msgs:?}"));
            }
            if first_error(&msgs).and_then(Msg::code).as_deref() != Some(code) {
                problems.push(format!("{what}: expected {code}: {msgs:?}"));
            }
            if !complete {
                // Let the reviewer's rejection end it before going on.
                let _ = until_ready(&mut w, 1, Duration::from_secs(10));
            }
            if reviewer.count() != held_before {
                problems.push(format!(
                    "{what}: held for review: {:?}",
                    reviewer.held.lock().unwrap().last()
                ));
            }
            assert_eq!(w.values("SELECT 1"), ["1"], "{what}: the session goes on");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn unparseable_sql_through_tokio_postgres() {
    let proxy = common::lab::shipped_proxy();
    let client = proxy.connect("postgres", DB).await;
    for sql in ["SELEC 1", "SELECT FROM WHERE", "DELETE victim"] {
        let e = client.simple_query(sql).await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42601"), "{sql}: {e}");
        let e = client.query(sql, &[]).await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42601"), "{sql}: {e}");
        let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
    }
}
