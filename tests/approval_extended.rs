//! Holds in the extended protocol (bound parameters, as the reviewer sees
//! them and as they run; pipelined messages answered in order) and inside
//! transaction blocks (a rejection fails the transaction on both sides).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::protocol::{put_cstr, put_message};
use common::approval::*;
use common::rawpg::{
    bind, execute, first_error, flush, parse, query, sync, tags, Msg, Read1, Wire,
};
use common::*;
use serde_json::json;
use tokio_postgres::error::SqlState;

/// A Bind with every parameter and result in binary.
fn bind_binary(portal: &[u8], stmt: &[u8], params: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'B', |b| {
        put_cstr(b, portal);
        put_cstr(b, stmt);
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            b.extend_from_slice(&(p.len() as i32).to_be_bytes());
            b.extend_from_slice(p);
        }
        b.extend_from_slice(&0i16.to_be_bytes());
    });
    m
}

/// Sends a CancelRequest for `w`'s session to the proxy.
fn cancel(proxy: &TestProxy, w: &Wire) {
    use std::io::Write;
    let mut m = 16u32.to_be_bytes().to_vec();
    m.extend_from_slice(&80877102u32.to_be_bytes());
    m.extend_from_slice(&w.pid.to_be_bytes());
    m.extend_from_slice(&w.secret.to_be_bytes());
    let mut s = std::net::TcpStream::connect(proxy.addr).unwrap();
    s.write_all(&m).unwrap();
}

/// The text of a CommandComplete.
fn command_tag(m: &Msg) -> String {
    String::from_utf8_lossy(&m.body[..m.body.len().saturating_sub(1)]).into_owned()
}

/// The message text of a NoticeResponse or ErrorResponse.
fn text(m: &Msg) -> String {
    m.field(b'M').unwrap_or_default()
}

/// Reads until `n` ReadyForQuery have come; panics on close or timeout.
fn until_ready(w: &mut Wire, n: usize) -> Vec<Msg> {
    w.until(b'Z', n)
}

/// Reads until a NoticeResponse whose text contains `needle` (and returns
/// everything read so far).
fn until_notice(w: &mut Wire, needle: &str) -> Vec<Msg> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    loop {
        match w.read(deadline) {
            Read1::Msg(m) => {
                let found = m.tag == b'N' && text(&m).contains(needle);
                out.push(m);
                if found {
                    return out;
                }
            }
            other => panic!("waiting for a notice {needle:?}: {other:?} after {out:?}"),
        }
    }
}

/// tokio-postgres binds its parameters in binary, with types the server
/// inferred (its Parse declares none): the reviewer still sees `42` and `3`,
/// and the statement runs with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_parameters_are_shown_decoded_and_run_after_approval() {
    let t = unique("ap_bin");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = $1 WHERE id = $2");
    let held = tokio::spawn({
        let sql = sql.clone();
        async move { client.execute(sql.as_str(), &[&42i32, &3i32]).await }
    });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["sql"], sql);
    assert_eq!(values(&t), [0; 5]);
    approve_ok(proxy.admin, ALICE, &id);
    let n = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("runs after approval")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(values(&t), [0, 0, 42, 0, 0], "ran with the bound values");
    assert_eq!(
        r["params"],
        json!(["42", "3"]),
        "the reviewer sees the values of the int4 parameters: {r}"
    );
}

/// Text parameters of an unnamed statement, and binary ones of a named
/// statement that declares its types, over the raw protocol.
#[test]
fn text_and_declared_binary_parameters_are_shown_and_run() {
    let t = unique("ap_text");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");

    let sql = format!("UPDATE {t} SET v = $1 WHERE id = $2");
    let mut msgs = parse(b"", sql.as_bytes(), &[]);
    msgs.extend(bind(
        b"",
        b"",
        &[Some(b"42".to_vec()), Some(b"3".to_vec())],
        0,
    ));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    w.send(&msgs);
    let seen = until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, &t);
    let id = r["id"].as_str().unwrap().to_string();
    assert!(text(seen.last().unwrap()).contains(&id), "{seen:?}");
    assert_eq!(r["params"], json!(["42", "3"]), "{r}");
    assert_eq!(r["sql"], sql);
    assert!(w.quiet_for(Duration::from_millis(200)).is_ok(), "held");
    approve_ok(proxy.admin, BOB, &id);
    let msgs = until_ready(&mut w, 1);
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    let done: Vec<_> = msgs.iter().filter(|m| m.tag == b'C').collect();
    assert_eq!(command_tag(done[0]), "UPDATE 1", "{}", tags(&msgs));
    assert_eq!(values(&t), [0, 0, 42, 0, 0]);

    // A named statement with declared int4 parameters, bound in binary.
    let sql = format!("UPDATE {t} SET v = $1 WHERE id = $2 AND v >= 0");
    let mut msgs = parse(b"upd", sql.as_bytes(), &[23, 23]);
    msgs.extend(bind_binary(
        b"",
        b"upd",
        &[&(-7i32).to_be_bytes(), &5i32.to_be_bytes()],
    ));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    w.send(&msgs);
    until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, "v >= 0");
    assert_eq!(r["params"], json!(["-7", "5"]), "{r}");
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());
    let msgs = until_ready(&mut w, 1);
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    assert_eq!(values(&t), [0, 0, 42, 0, -7]);
}

/// Pipelined batches are answered in order: a read sent before the held
/// write gets its result at once; a read sent after it waits, and then sees
/// the write's effect.
#[test]
fn pipelined_batches_are_answered_in_order_around_a_hold() {
    let t = unique("ap_pipe");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let read = format!("SELECT v FROM {t} WHERE id = 3");
    let write = format!("UPDATE {t} SET v = $1 WHERE id = $2");
    let mut msgs = parse(b"", read.as_bytes(), &[]);
    msgs.extend(bind(b"", b"", &[], 0));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    msgs.extend(parse(b"", write.as_bytes(), &[]));
    msgs.extend(bind(
        b"",
        b"",
        &[Some(b"42".to_vec()), Some(b"3".to_vec())],
        0,
    ));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    msgs.extend(query(read.as_bytes()));
    w.send(&msgs);

    // The first read is answered, and the notice of the hold comes.
    let mut before = until_ready(&mut w, 1);
    if !before
        .iter()
        .any(|m| m.tag == b'N' && text(m).contains("held"))
    {
        before.extend(until_notice(&mut w, "held for review"));
    }
    let rows: Vec<_> = before.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), 1, "{before:?}");
    assert_eq!(rows[0].columns()[0].as_deref(), Some(&b"0"[..]));
    assert!(
        w.quiet_for(Duration::from_millis(300)).is_ok(),
        "nothing after the held write is answered before the decision"
    );
    let r = pending(proxy.admin, &t);
    assert_eq!(r["params"], json!(["42", "3"]));
    assert_eq!(value(&t, 3), 0);
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());

    let after = until_ready(&mut w, 2);
    assert!(first_error(&after).is_none(), "{after:?}");
    let done: Vec<_> = after
        .iter()
        .filter(|m| m.tag == b'C')
        .map(command_tag)
        .collect();
    assert_eq!(done, ["UPDATE 1", "SELECT 1"], "{}", tags(&after));
    let rows: Vec<_> = after.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(
        rows[0].columns()[0].as_deref(),
        Some(&b"42"[..]),
        "the read after the write sees it"
    );
    assert_eq!(value(&t, 3), 42);
}

/// The same with tokio-postgres pipelining prepared statements: the read
/// joined before the held write completes while the write waits; one joined
/// after it waits with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_pipelines_a_read_around_a_held_write() {
    let t = unique("ap_tpipe");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = Arc::new(proxy.connect("postgres", "airlock_test").await);
    let read = client
        .prepare(&format!("SELECT v FROM {t} WHERE id = $1"))
        .await
        .unwrap();
    let write = client
        .prepare(&format!("UPDATE {t} SET v = $1 WHERE id = $2"))
        .await
        .unwrap();

    // Read first, then the write.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let (client, read, write) = (client.clone(), read.clone(), write.clone());
        async move {
            let r = async {
                let rows = client.query(&read, &[&4i32]).await;
                let _ = tx.send(rows);
            };
            let w = client.execute(&write, &[&42i32, &4i32]);
            tokio::join!(r, w).1
        }
    });
    let rows = tokio::time::timeout(PATIENCE, rx)
        .await
        .expect("the read is answered while the write is held")
        .unwrap()
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 0);
    let r = pending_async(proxy.admin, &t).await;
    assert!(!task.is_finished());
    let first = r["id"].as_str().unwrap().to_string();
    approve_ok(proxy.admin, ALICE, &first);
    let n = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("runs after approval")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(value(&t, 4), 42);

    // The write first, then the read: the read waits for the write.
    let task = tokio::spawn({
        let (client, read, write) = (client.clone(), read.clone(), write.clone());
        async move {
            let w = client.execute(&write, &[&43i32, &5i32]);
            let r = client.query(&read, &[&5i32]);
            tokio::join!(w, r)
        }
    });
    let r = tokio::task::spawn_blocking({
        let (admin, t) = (proxy.admin, t.clone());
        move || pending_except(admin, &t, &[first.as_str()])
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "the read waits behind the held write");
    approve_ok(proxy.admin, BOB, r["id"].as_str().unwrap());
    let (w, rows) = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("both answered after approval")
        .unwrap();
    assert_eq!(w.unwrap(), 1);
    assert_eq!(rows.unwrap()[0].get::<_, i32>(0), 43, "the read ran after");
    assert_eq!(values(&t), [0, 0, 0, 42, 43]);
}

/// A policy that lets INSERTs into `t` through and holds every other write.
fn insert_rules(t: &str) -> String {
    format!(
        r#"
[[rule]]
name = "reads"
kind = ["read"]
action = "allow"

[[rule]]
name = "plumbing"
kind = ["transaction", "session"]
action = "allow"

[[rule]]
name = "inserts"
command = ["INSERT"]
tables = ["{t}"]
action = "allow"

[[rule]]
name = "reviewed-writes"
action = "require_approval"
approvers = ["reviewers"]
approvals = 1
timeout = "30s"
"#
    )
}

/// The transaction state of backend `pid`, as PostgreSQL reports it.
fn backend_state(pid: u32) -> String {
    direct(&format!(
        "select state from pg_stat_activity where pid = {pid}"
    ))
}

/// Simple protocol: BEGIN; INSERT (allowed); UPDATE (held, rejected). The
/// client and the upstream both see a failed transaction; ROLLBACK
/// recovers, and the INSERT never lands.
#[test]
fn a_rejection_inside_a_transaction_fails_it_on_both_sides() {
    let t = unique("ap_tx");
    table(&t);
    let proxy = proxy_with_rules(&insert_rules(&t));
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let ok = |msgs: &[Msg]| assert!(first_error(msgs).is_none(), "{msgs:?}");
    ok(&w.simple("BEGIN"));
    let msgs = w.simple(&format!("INSERT INTO {t} VALUES (100, 1)"));
    ok(&msgs);
    assert_eq!(msgs.last().unwrap().body, b"T");
    w.send(&query(
        format!("UPDATE {t} SET v = 5 WHERE id = 1").as_bytes(),
    ));
    until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, &t);
    assert_eq!(r["rule"], "reviewed-writes");
    assert_eq!(backend_state(w.pid), "idle in transaction");
    reject_ok(
        proxy.admin,
        ALICE,
        r["id"].as_str().unwrap(),
        "not in there",
    );
    let msgs = until_ready(&mut w, 1);
    let err = first_error(&msgs).expect("the rejection");
    assert_eq!(err.code().as_deref(), Some("42501"));
    assert!(text(err).contains("alice") && text(err).contains("not in there"));
    assert_eq!(
        msgs.last().unwrap().body,
        b"E",
        "the client's transaction failed"
    );
    assert_eq!(
        backend_state(w.pid),
        "idle in transaction (aborted)",
        "and so did the upstream's"
    );
    let msgs = w.simple("SELECT 1");
    assert_eq!(
        first_error(&msgs).and_then(|e| e.code()).as_deref(),
        Some("25P02"),
        "{msgs:?}"
    );
    assert_eq!(msgs.last().unwrap().body, b"E");
    let msgs = w.simple("ROLLBACK");
    ok(&msgs);
    assert_eq!(msgs.last().unwrap().body, b"I");
    assert_eq!(w.values("SELECT 1"), ["1"]);
    assert_eq!(rows(&t), 5, "the INSERT is not in the table");
    assert_eq!(
        direct(&format!("select count(*) from {t} where id = 100")),
        "0"
    );
    assert_eq!(values(&t), [0; 5]);
}

/// Extended protocol (tokio-postgres): the same rejection inside a
/// transaction, and an approval inside one that then commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_holds_inside_transactions() {
    let t = unique("ap_txx");
    table(&t);
    let proxy = proxy_with_rules(&insert_rules(&t));
    let client = Arc::new(proxy.connect("postgres", "airlock_test").await);
    let pid = client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get::<_, i32>(0) as u32;

    client.batch_execute("BEGIN").await.unwrap();
    let n = client
        .execute(&format!("INSERT INTO {t} VALUES (101, 1)"), &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let held = tokio::spawn({
        let (client, sql) = (client.clone(), format!("UPDATE {t} SET v = 6 WHERE id = 2"));
        async move { client.execute(sql.as_str(), &[]).await }
    });
    let r = pending_async(proxy.admin, "v = 6").await;
    reject_ok(proxy.admin, BOB, r["id"].as_str().unwrap(), "no");
    let err = held.await.unwrap().expect_err("rejected");
    assert_eq!(db_error(&err).code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    let failed = tokio::task::spawn_blocking(move || backend_state(pid))
        .await
        .unwrap();
    assert_eq!(failed, "idle in transaction (aborted)");
    let err = client.execute("SELECT 1", &[]).await.expect_err("25P02");
    assert_eq!(db_error(&err).code(), &SqlState::IN_FAILED_SQL_TRANSACTION);
    client.batch_execute("ROLLBACK").await.unwrap();
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert_eq!(rows(&t), 5, "the INSERT was rolled back");
    assert_eq!(values(&t), [0; 5]);

    // Approved inside a transaction: it runs there, and commits with it.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(&format!("INSERT INTO {t} VALUES (102, 2)"), &[])
        .await
        .unwrap();
    let held = tokio::spawn({
        let (client, sql) = (client.clone(), format!("UPDATE {t} SET v = 7 WHERE id = 3"));
        async move { client.execute(sql.as_str(), &[]).await }
    });
    let r = pending_async(proxy.admin, "v = 7").await;
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 3), 0, "not committed yet");
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(values(&t), [0, 0, 7, 0, 0, 2]);
}

/// psycopg-style pipelining with Flush: a read flushed before the held
/// write is answered at once; the write and its Sync wait. (The read-only
/// backstop is off here: with it, a write behind a read in one batch fails
/// with 25006 whether held or not, a limit docs/backstop.md describes.)
#[test]
fn a_flushed_read_before_a_held_write_is_answered() {
    let t = unique("ap_flush");
    table(&t);
    let proxy = proxy_with(|c| c.read_only_backstop = false);
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let mut msgs = parse(
        b"r",
        format!("SELECT v FROM {t} WHERE id = 1").as_bytes(),
        &[],
    );
    msgs.extend(bind(b"", b"r", &[], 0));
    msgs.extend(execute(b"", 0));
    msgs.extend(flush());
    msgs.extend(parse(
        b"w",
        format!("UPDATE {t} SET v = 5 WHERE id = 1").as_bytes(),
        &[],
    ));
    msgs.extend(bind(b"", b"w", &[], 0));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    w.send(&msgs);
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !(seen.iter().any(|m: &Msg| m.tag == b'C')
        && seen
            .iter()
            .any(|m| m.tag == b'N' && text(m).contains("held")))
    {
        match w.read(deadline) {
            Read1::Msg(m) => seen.push(m),
            other => panic!("{other:?} after {}", tags(&seen)),
        }
    }
    let rows: Vec<_> = seen.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows[0].columns()[0].as_deref(), Some(&b"0"[..]), "{seen:?}");
    assert!(!seen.iter().any(|m| m.tag == b'Z'), "{}", tags(&seen));
    assert!(w.quiet_for(Duration::from_millis(200)).is_ok());
    let r = pending(proxy.admin, &t);
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());
    let after = until_ready(&mut w, 1);
    assert!(first_error(&after).is_none(), "{after:?}");
    let done: Vec<_> = after
        .iter()
        .filter(|m| m.tag == b'C')
        .map(command_tag)
        .collect();
    assert_eq!(done, ["UPDATE 1"], "{}", tags(&after));
    assert_eq!(value(&t, 1), 5);
}

/// Cancelling a statement held inside a transaction fails the transaction
/// on both sides, as a cancelled statement would in PostgreSQL.
#[test]
fn a_cancel_inside_a_transaction_fails_it_on_both_sides() {
    let t = unique("ap_txcancel");
    table(&t);
    let proxy = proxy_with_rules(&insert_rules(&t));
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    assert!(first_error(&w.simple("BEGIN")).is_none());
    let msgs = w.simple(&format!("INSERT INTO {t} VALUES (100, 1)"));
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    w.send(&query(
        format!("UPDATE {t} SET v = 5 WHERE id = 1").as_bytes(),
    ));
    until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, &t);
    cancel(&proxy, &w);
    let msgs = until_ready(&mut w, 1);
    let err = first_error(&msgs).expect("the cancel");
    assert_eq!(err.code().as_deref(), Some("57014"), "{msgs:?}");
    assert_eq!(msgs.last().unwrap().body, b"E");
    assert_eq!(backend_state(w.pid), "idle in transaction (aborted)");
    status_becomes(proxy.admin, r["id"].as_str().unwrap(), "cancelled");
    assert!(first_error(&w.simple("ROLLBACK")).is_none());
    assert_eq!(w.values("SELECT 1"), ["1"]);
    assert_eq!(rows(&t), 5);
    assert_eq!(values(&t), [0; 5]);
}

/// The hold is at Bind: once approved, the portal runs however often it is
/// executed (here in parts, with a row limit), as one request.
#[test]
fn an_approved_portal_runs_to_the_end_in_parts() {
    let t = unique("ap_parts");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id > $1 RETURNING id");
    let mut msgs = parse(b"", sql.as_bytes(), &[]);
    msgs.extend(bind(b"", b"", &[Some(b"0".to_vec())], 0));
    msgs.extend(execute(b"", 2));
    msgs.extend(execute(b"", 0));
    msgs.extend(sync());
    w.send(&msgs);
    until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, &t);
    assert_eq!(values(&t), [0; 5], "nothing ran before approval");
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());
    let msgs = until_ready(&mut w, 1);
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    let kinds: Vec<u8> = msgs.iter().map(|m| m.tag).filter(|t| *t != b'N').collect();
    assert_eq!(kinds, b"12DDsDDDCZ", "{}", tags(&msgs));
    // (PostgreSQL's tag counts the rows of the last Execute only.)
    let done = msgs.iter().find(|m| m.tag == b'C').unwrap();
    assert!(
        command_tag(done).starts_with("UPDATE "),
        "{}",
        command_tag(done)
    );
    assert_eq!(values(&t), [1; 5], "every row, once");
    assert_eq!(requests_for(proxy.admin, &t).len(), 1, "one request");
}

/// A rejected Bind fails its batch on the server, which discards the rest
/// until Sync: nothing after it in the batch is held as a request of its
/// own, and the next batch is served.
#[test]
fn a_rejected_bind_discards_the_rest_of_its_batch() {
    let t = unique("ap_disc");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let first = format!("UPDATE {t} SET v = 1 WHERE id = 1");
    let second = format!("UPDATE {t} SET v = 2 WHERE id = 2");
    let mut msgs = Vec::new();
    for sql in [&first, &second] {
        msgs.extend(parse(b"", sql.as_bytes(), &[]));
        msgs.extend(bind(b"", b"", &[], 0));
        msgs.extend(execute(b"", 0));
    }
    msgs.extend(sync());
    msgs.extend(query(format!("SELECT count(*) FROM {t}").as_bytes()));
    w.send(&msgs);
    until_notice(&mut w, "held for review");
    let r = pending(proxy.admin, "v = 1");
    reject_ok(proxy.admin, ALICE, r["id"].as_str().unwrap(), "no");
    let msgs = until_ready(&mut w, 2);
    assert_eq!(
        first_error(&msgs).and_then(Msg::code).as_deref(),
        Some("42501")
    );
    let rows: Vec<_> = msgs.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), 1, "the next batch is served: {}", tags(&msgs));
    assert_eq!(values(&t), [0; 5]);
    assert_eq!(
        requests_for(proxy.admin, &t).len(),
        1,
        "one request: {:?}",
        requests_for(proxy.admin, &t)
    );
}
