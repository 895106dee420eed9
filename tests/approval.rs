//! Holding statements on the wire until reviewers decide, end to end:
//! real proxy, real PostgreSQL, tokio-postgres and psql clients, and the
//! admin API over HTTP. Approve, reject, the two-approval rule, who may
//! decide, and the audit trail. (Timeouts, cancels and disconnects are in
//! approval_waiting.rs; the extended protocol and transactions in
//! approval_extended.rs.)

mod common;

use std::time::Duration;

use common::approval::*;
use common::http::call;
use common::rawpg;
use common::*;
use tokio_postgres::error::SqlState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_update_runs_on_the_same_connection() {
    let t = unique("ap_update");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 7 WHERE id <= 3");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let r = pending_async(proxy.admin, &t).await;
    assert_eq!(r["status"], "pending");
    assert_eq!(r["requester"], "postgres");
    assert_eq!(r["database"], "airlock_test");
    assert_eq!(r["rule"], "writes");
    assert_eq!(r["approvals_required"], 1);
    assert_eq!(r["approvers"], serde_json::json!(["reviewers"]));
    assert_eq!(r["sql"], format!("UPDATE {t} SET v = 7 WHERE id <= 3"));
    assert!(
        r["client_addr"].as_str().unwrap().starts_with("127.0.0.1"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "the client waits for the decision");
    assert_eq!(values(&t), [0; 5], "nothing ran before the approval");
    let id = r["id"].as_str().unwrap().to_string();
    approve_ok(proxy.admin, ALICE, &id);
    let (client, rows) = held.await.unwrap();
    assert_eq!(rows.unwrap(), 3, "the real result reaches the client");
    assert_eq!(values(&t), [7, 7, 7, 0, 0]);
    // The same connection goes on, and is the same upstream session.
    let pid: i32 = client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(pid > 0);
    let body = request_until(proxy.admin, &id, |r| !r["rows_affected"].is_null());
    assert_eq!(body["status"], "executed");
    assert_eq!(body["rows_affected"], 3);
    assert!(body["executed_at"].is_i64(), "{body}");
    assert_eq!(body["reviews"][0]["reviewer"], "alice");
    assert_eq!(body["reviews"][0]["decision"], "approve");
    assert_eq!(body["reviews"][0]["comment"], "looks fine");
}

/// psql blocks on the held UPDATE, shows the NOTICE with the request id at
/// once, and prints the real command tag once a reviewer approves.
#[test]
fn psql_waits_for_the_approval_and_prints_the_result() {
    let t = unique("ap_psql");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut child = spawn_psql(&proxy, &format!("UPDATE {t} SET v = 9 WHERE id IN (2, 4)"));
    let r = pending(proxy.admin, &t);
    let id = r["id"].as_str().unwrap().to_string();
    still_running(&mut child, Duration::from_millis(300));
    assert_eq!(values(&t), [0; 5], "nothing ran before the approval");
    approve_ok(proxy.admin, BOB, &id);
    let out = finish(child);
    let stdout = stdout_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim(), "UPDATE 2", "stderr: {stderr}");
    assert!(
        stderr.contains("NOTICE:") && stderr.contains(&format!("held for review as request {id}")),
        "the held NOTICE names the request: {stderr}"
    );
    assert!(stderr.contains("\"writes\""), "and the rule: {stderr}");
    assert!(
        stderr.contains(&format!("request {id} approved by bob")),
        "{stderr}"
    );
    assert_eq!(values(&t), [0, 9, 0, 9, 0]);
    let r = request_until(proxy.admin, &id, |r| r["rows_affected"] == 2);
    assert_eq!(r["status"], "executed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_update_gets_42501_and_the_session_goes_on() {
    let t = unique("ap_reject");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 5 WHERE id = 1");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    let body = reject_ok(proxy.admin, BOB, &id, "not during the freeze");
    assert_eq!(body["status"], "rejected");
    let (client, result) = held.await.unwrap();
    let err = result.expect_err("a rejected statement fails");
    let db = db_error(&err);
    assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{db:?}");
    assert!(db.message().contains("bob"), "names the reviewer: {db:?}");
    assert!(
        db.message().contains("not during the freeze"),
        "and the reason: {db:?}"
    );
    assert!(db.message().contains(&id), "and the request: {db:?}");
    assert_eq!(values(&t), [0; 5], "the row is unchanged");
    // The session stays usable.
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(
        rows.iter().any(|m| matches!(
            m,
            tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("1")
        )),
        "{rows:?}"
    );
    let n: i32 = client
        .query_one(&format!("select v from {t} where id = 1"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let r = request(proxy.admin, &id);
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["reason"], "not during the freeze");
    assert_eq!(r["reviews"][0]["reviewer"], "bob");
    assert_eq!(r["reviews"][0]["decision"], "reject");
    assert!(r["executed_at"].is_null(), "{r}");
    // A decided request cannot be decided again.
    let (status, body) = approve(proxy.admin, ALICE, &id);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_pending");
    // A rejection without a reason is refused.
    let sql = format!("UPDATE {t} SET v = 6 WHERE id = 2");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let r = pending_async(proxy.admin, "v = 6").await;
    let second = r["id"].as_str().unwrap().to_string();
    let (status, body) = reject(proxy.admin, ALICE, &second, "  ");
    assert_eq!(status, 422, "{body}");
    assert_eq!(request(proxy.admin, &second)["status"], "pending");
    reject_ok(proxy.admin, ALICE, &second, "no");
    let err = held.await.unwrap().expect_err("rejected");
    assert_eq!(db_error(&err).code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    assert!(db_error(&err).message().contains("alice"), "{err:?}");
    assert_eq!(values(&t), [0; 5]);
}

/// The shipped policy holds `DELETE` without WHERE for two approvals: the
/// first leaves the client waiting and the request pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_without_where_needs_two_approvals() {
    let t = unique("ap_two");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("DELETE FROM {t}");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["rule"], "destructive-writes");
    assert_eq!(r["approvals_required"], 2);
    assert!(
        r["risks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "no_where"),
        "{r}"
    );
    let body = approve_ok(proxy.admin, ALICE, &id);
    assert_eq!(body["status"], "pending", "one approval of two: {body}");
    assert_eq!(body["reviews"].as_array().unwrap().len(), 1);
    // The same reviewer cannot count twice.
    let (status, body) = approve(proxy.admin, ALICE, &id);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_reviewed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the client still waits");
    let r = request(proxy.admin, &id);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["reviews"].as_array().unwrap().len(), 1);
    assert_eq!(rows(&t), 5, "nothing ran after one approval");
    approve_ok(proxy.admin, BOB, &id);
    let deleted = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("runs after the second approval")
        .unwrap()
        .unwrap();
    assert_eq!(deleted, 5);
    assert_eq!(rows(&t), 0);
    let r = request_until(proxy.admin, &id, |r| r["rows_affected"] == 5);
    assert_eq!(r["status"], "executed");
    let who: Vec<_> = r["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reviewer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
}

/// Nobody approves their own request (by name or by the roles they use),
/// and only the rule's groups decide; refused attempts change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_cannot_approve_their_own_or_other_groups_requests() {
    let t = unique("ap_self");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 3 WHERE id = 5");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    for (who, token) in [("postgres", SELF), ("dave", DAVE), ("carol", CAROL)] {
        let (status, body) = approve(proxy.admin, token, &id);
        assert_eq!(status, 403, "{who} approving: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        let (status, body) = reject(proxy.admin, token, &id, "mine");
        assert_eq!(status, 403, "{who} rejecting: {body}");
    }
    let (_, body) = approve(proxy.admin, SELF, &id);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("own request"),
        "{body}"
    );
    let (_, body) = approve(proxy.admin, CAROL, &id);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reviewers"),
        "{body}"
    );
    // No token, or a wrong one: 401.
    let path = format!("/api/v1/requests/{id}/approve");
    let (status, _) = call(proxy.admin, "POST", &path, None, Some("{}"));
    assert_eq!(status, 401);
    let (status, _) = call(proxy.admin, "POST", &path, Some("nope"), Some("{}"));
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "the client still waits");
    let r = request(proxy.admin, &id);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["reviews"], serde_json::json!([]), "{r}");
    assert_eq!(value(&t, 5), 0);
    assert!(
        !audit(proxy.admin)
            .iter()
            .any(|e| e["event"] == "approve" || e["event"] == "reject"),
        "refused attempts are no decisions"
    );
    approve_ok(proxy.admin, ALICE, &id);
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 5), 3);
}

/// The audit trail has the hold, the decision and the execution of each
/// flow, with who, what and how many rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_holds_decisions_and_executions() {
    let t = unique("ap_audit");
    table(&t);
    let proxy = proxy_with(|_| {});
    let admin = proxy.admin;

    // Approved and run.
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 1 WHERE id IN (1, 2)");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let approved = pending_async(admin, "v = 1").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    approve_ok(admin, ALICE, &approved);
    let (client, n) = held.await.unwrap();
    assert_eq!(n.unwrap(), 2);

    // Rejected.
    let sql = format!("UPDATE {t} SET v = 2 WHERE id = 3");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let rejected = pending_async(admin, "v = 2").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    reject_ok(admin, BOB, &rejected, "wrong row");
    let (client, r) = held.await.unwrap();
    r.expect_err("rejected");

    // Cancelled.
    let token = client.cancel_token();
    let sql = format!("UPDATE {t} SET v = 3 WHERE id = 4");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let cancelled = pending_async(admin, "v = 3").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    held.await.unwrap().expect_err("cancelled");
    assert_eq!(values(&t), [1, 1, 0, 0, 0]);

    let sql_of = move |id: &str| request(admin, id)["sql"].as_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        for id in [&approved, &rejected, &cancelled] {
            let e = audit_entry(admin, "hold", id, |_| true);
            assert_eq!(e["requester"], "postgres", "{e}");
            assert_eq!(e["database"], "airlock_test", "{e}");
            assert_eq!(e["rule"], "writes", "{e}");
            assert_eq!(e["outcome"], "pending", "{e}");
            assert_eq!(e["sql"], sql_of(id), "{e}");
            assert!(e["client_addr"].as_str().unwrap().starts_with("127.0.0.1"));
            assert!(e["at"].as_i64().unwrap() > 0, "{e}");
        }
        let e = audit_entry(admin, "approve", &approved, |_| true);
        assert_eq!(e["actor"], "alice", "{e}");
        assert_eq!(e["outcome"], "approved", "{e}");
        assert_eq!(e["requester"], "postgres", "{e}");
        assert_eq!(e["sql"], sql_of(&approved), "{e}");
        let e = audit_entry(admin, "execute", &approved, |e| e["outcome"] == "executed");
        assert_eq!(e["rows_affected"], 2, "{e}");
        assert!(e["duration_ms"].is_i64(), "{e}");
        assert_eq!(e["requester"], "postgres", "{e}");
        let e = audit_entry(admin, "reject", &rejected, |_| true);
        assert_eq!(e["actor"], "bob", "{e}");
        assert_eq!(e["outcome"], "rejected", "{e}");
        assert_eq!(e["sql"], sql_of(&rejected), "{e}");
        let cancel = audit_entry(admin, "cancel", &cancelled, |_| true);
        assert_eq!(cancel["outcome"], "cancelled", "{cancel}");
        // Nothing ran but the approved statement.
        let trail = audit(admin);
        assert!(
            !trail.iter().any(|e| e["event"] == "execute"
                && (e["request_id"] == rejected.as_str() || e["request_id"] == cancelled.as_str())),
            "{trail:#?}"
        );
        // Newest first, ids decreasing.
        let ids: Vec<i64> = trail.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
        // Like every other entry, the cancel says who and what.
        assert_eq!(cancel["requester"], "postgres", "who withdrew it: {cancel}");
        assert_eq!(cancel["database"], "airlock_test", "{cancel}");
        assert_eq!(
            cancel["sql"],
            sql_of(&cancelled),
            "what was withdrawn: {cancel}"
        );
    })
    .await
    .unwrap();
}

/// A multi-statement simple query is held as a whole: not even its read
/// runs before the decision; after it, every part runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_statement_query_is_held_as_a_whole() {
    let t = unique("ap_multi");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!(
        "SELECT pg_advisory_xact_lock(0) IS NULL; UPDATE {t} SET v = 1 WHERE id = 1; \
         UPDATE {t} SET v = 2 WHERE id IN (2, 3)"
    );
    let held = tokio::spawn({
        let sql = sql.clone();
        async move { client.simple_query(&sql).await }
    });
    let r = pending_async(proxy.admin, &t).await;
    assert_eq!(r["sql"], sql, "the reviewer sees all of it");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished());
    assert_eq!(values(&t), [0; 5]);
    approve_ok(proxy.admin, ALICE, r["id"].as_str().unwrap());
    let msgs = held.await.unwrap().unwrap();
    let done: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(done, [1, 1, 2]);
    assert_eq!(values(&t), [1, 2, 2, 0, 0]);
}

/// An approved statement that PostgreSQL then refuses: the client gets
/// PostgreSQL's own error, nothing changes, and the audit trail does not
/// record it as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_statement_that_fails_reports_the_real_error() {
    let t = unique("ap_fails");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET id = 1 WHERE id = 2");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    approve_ok(proxy.admin, ALICE, &id);
    let (client, result) = held.await.unwrap();
    let err = result.expect_err("a duplicate key");
    assert_eq!(
        db_error(&err).code(),
        &SqlState::UNIQUE_VIOLATION,
        "{err:?}"
    );
    assert_eq!(
        direct(&format!("select count(*) from {t} where id = 2")),
        "1"
    );
    let one: i32 = client.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let admin = proxy.admin;
    let e = tokio::task::spawn_blocking(move || {
        audit_entry(admin, "execute", &id, |e| e["outcome"] != "running")
    })
    .await
    .unwrap();
    assert!(e["rows_affected"].is_null(), "{e}");
    assert_ne!(
        e["outcome"], "executed",
        "a statement PostgreSQL refused is not recorded as executed: {e}"
    );
}

/// SQL EXECUTE says nothing of what it runs: the reviewer is shown what the
/// session prepared under that name, by SQL PREPARE or by the protocol's
/// Parse, and the approved EXECUTE runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_see_what_an_sql_execute_runs() {
    let t = unique("ap_execute");
    table(&t);
    let proxy = proxy_with(|_| {});
    let admin = proxy.admin;
    let client = proxy.connect("postgres", "airlock_test").await;
    // PREPARE of a write is held too; approved, it only prepares.
    let prepare = format!("PREPARE upd AS UPDATE {t} SET v = $1 WHERE id = 1");
    let held = tokio::spawn({
        let prepare = prepare.clone();
        async move { client.simple_query(&prepare).await.map(|_| client) }
    });
    let r = pending_async(admin, &t).await;
    assert_eq!(r["sql"], prepare);
    approve_ok(admin, ALICE, r["id"].as_str().unwrap());
    let client = held.await.unwrap().unwrap();
    assert_eq!(values(&t), [0; 5]);

    let held = tokio::spawn(async move { client.simple_query("EXECUTE upd(7)").await });
    let r = pending_async(admin, &t).await;
    assert_eq!(
        r["sql"],
        format!("EXECUTE upd(7)\n-- upd was prepared as:\n--   {prepare}")
    );
    assert_eq!(values(&t), [0; 5]);
    approve_ok(admin, ALICE, r["id"].as_str().unwrap());
    held.await.unwrap().unwrap();
    assert_eq!(values(&t), [7, 0, 0, 0, 0]);

    // A statement the protocol prepared, executed from SQL.
    let parsed = format!("UPDATE {t} SET v = $1 WHERE id = 2");
    let mut w = rawpg::Wire::open(proxy.addr, "postgres", "airlock_test");
    w.send(
        &[
            rawpg::parse(b"by_protocol", parsed.as_bytes(), &[]),
            rawpg::sync(),
        ]
        .concat(),
    );
    let msgs = w.until(b'Z', 1);
    assert!(rawpg::first_error(&msgs).is_none(), "{msgs:?}");
    let run = tokio::task::spawn_blocking(move || {
        w.send(&rawpg::query(b"EXECUTE by_protocol(8)"));
        w.until(b'Z', 1)
    });
    let r = pending_async(admin, &t).await;
    assert_eq!(
        r["sql"],
        format!("EXECUTE by_protocol(8)\n-- by_protocol was prepared as:\n--   {parsed}")
    );
    assert_eq!(values(&t), [7, 0, 0, 0, 0]);
    approve_ok(admin, ALICE, r["id"].as_str().unwrap());
    let msgs = run.await.unwrap();
    assert!(rawpg::first_error(&msgs).is_none(), "{msgs:?}");
    assert_eq!(values(&t), [7, 8, 0, 0, 0]);
}

/// What the audit trail keeps of decisions no reviewer made: every allowed
/// write and every denial, one by one; transaction control and session
/// settings are counted in the metrics, not audited (an application sends
/// them on every transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_writes_and_denials_are_audited_session_plumbing_is_counted() {
    let t = unique("au_plumbing");
    table(&t);
    let proxy = proxy_with_rules(&format!(
        r#"
[[rule]]
name = "no-truncate"
command = ["TRUNCATE TABLE"]
action = "deny"
{}"#,
        writes_allowed_to(&t)
    ));
    let client = proxy.connect("postgres", "airlock_test").await;
    let marker = format!("/* {t} */");
    for i in 0..3 {
        client
            .batch_execute(&format!(
                "BEGIN {marker}; SET LOCAL work_mem = '8MB' {marker}; \
                 INSERT INTO {t} VALUES (100, 1) ON CONFLICT DO NOTHING {marker}; COMMIT {marker}"
            ))
            .await
            .unwrap();
        // Its record was committed before it ran: no waiting here.
        let recorded = audit(proxy.admin)
            .iter()
            .filter(|e| e["sql"].as_str().is_some_and(|s| s.contains(&marker)))
            .count();
        assert_eq!(
            recorded,
            i + 1,
            "the allowed write is in the trail when it has run"
        );
    }
    for sql in [
        "BEGIN",
        "SET LOCAL work_mem = '4MB'",
        "SHOW work_mem",
        "COMMIT",
        "RESET work_mem",
    ] {
        client
            .batch_execute(&format!("{sql} {marker}"))
            .await
            .unwrap();
    }
    let e = client
        .batch_execute(&format!("TRUNCATE {t} {marker}"))
        .await
        .unwrap_err();
    assert_eq!(db_error(&e).code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    let deadline = std::time::Instant::now() + PATIENCE;
    let mine = loop {
        let mine: Vec<serde_json::Value> = audit(proxy.admin)
            .into_iter()
            .filter(|e| e["sql"].as_str().is_some_and(|s| s.contains(&marker)))
            .collect();
        if mine.len() >= 4 || std::time::Instant::now() > deadline {
            break mine;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
    let sqls: Vec<&str> = mine.iter().map(|e| e["sql"].as_str().unwrap()).collect();
    let allowed = mine.iter().filter(|e| e["event"] == "allow").count();
    let denied = mine.iter().filter(|e| e["event"] == "deny").count();
    assert_eq!((allowed, denied), (3, 1), "{sqls:#?}");
    assert!(
        sqls.iter()
            .all(|s| s.contains("INSERT") || s.contains("TRUNCATE")),
        "only the writes and the denial: {sqls:#?}"
    );
    assert_eq!(rows(&t), 6, "the INSERT ran");
}

/// An allowed write whose audit record cannot be written does not run:
/// the client gets 58000 and the table is untouched; the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_write_that_cannot_be_audited_does_not_run() {
    let t = unique("au_broken");
    table(&t);
    let path = std::env::temp_dir().join(format!("{}.db", unique("airlock-broken-audit")));
    let url = format!("sqlite://{}", path.display());
    let proxy = proxy_with_rules_and(&writes_allowed_to(&t), |c| c.store = url.clone());
    let client = proxy.connect("postgres", "airlock_test").await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (100, 1)"))
        .await
        .expect("audited write");
    // The store loses its audit table behind the proxy's back.
    let store = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DROP TABLE audit")
        .execute(&store)
        .await
        .unwrap();
    let e = client
        .batch_execute(&format!("INSERT INTO {t} VALUES (101, 1)"))
        .await
        .unwrap_err();
    assert_eq!(db_error(&e).code().code(), "58000", "{e:?}");
    assert_eq!(rows(&t), 6, "only the audited write ran");
    // The session goes on; reads are not audited.
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {t}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 6);
}
