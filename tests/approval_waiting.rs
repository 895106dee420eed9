//! What becomes of a held statement when the client stops waiting: the hold
//! times out (the request stays open, and once approved the identical
//! statement runs once when re-run), the client cancels (the request is
//! withdrawn), or the client goes away (the request stays open for a re-run).

mod common;

use std::time::{Duration, Instant};

use common::approval::*;
use common::*;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_timeout_leaves_the_request_open_and_an_approval_grants_one_rerun() {
    let t = unique("ap_timeout");
    table(&t);
    let proxy = proxy_with_rules(&quick_rules("2s"));
    let admin = proxy.admin;
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id = 2");

    // Held, then timed out.
    let client = proxy.connect("postgres", "airlock_test").await;
    let started = Instant::now();
    let err = client
        .execute(sql.as_str(), &[])
        .await
        .expect_err("the hold times out");
    let waited = started.elapsed();
    let db = db_error(&err);
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED, "{db:?}");
    assert!(
        waited >= Duration::from_millis(1900) && waited < PATIENCE,
        "waited {waited:?} for a 2 s hold"
    );
    let r = pending_async(admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["rule"], "reviewed-writes");
    assert!(db.message().contains(&id), "names the request: {db:?}");
    assert!(
        db.message().contains("still waiting for review"),
        "says it is still open: {db:?}"
    );
    assert!(
        db.detail().unwrap_or("").contains("stays open"),
        "{:?}",
        db.detail()
    );
    assert!(
        db.hint()
            .unwrap_or("")
            .contains("run the identical statement again"),
        "{:?}",
        db.hint()
    );
    assert_eq!(values(&t), [0; 5], "nothing ran");
    // The connection goes on.
    let one: i32 = client.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);

    let r = approve_ok(admin, ALICE, &id);
    assert_eq!(r["status"], "approved", "nobody waits to claim it: {r}");
    assert!(r["grant_expires_at"].is_i64(), "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(request(admin, &id)["status"], "approved");
    assert_eq!(values(&t), [0; 5], "approving alone runs nothing");

    // A different statement does not use the grant.
    let client = proxy.connect("postgres", "airlock_test").await;
    let token = client.cancel_token();
    let other = format!("UPDATE {t} SET v = v + 1 WHERE id = 3");
    let held = tokio::spawn(async move {
        let r = client.execute(other.as_str(), &[]).await;
        (client, r)
    });
    let o = pending_async(admin, "id = 3").await;
    assert_ne!(o["id"], id.as_str());
    token.cancel_query(NoTls).await.unwrap();
    let (client, r) = held.await.unwrap();
    r.expect_err("cancelled");
    assert_eq!(request(admin, &id)["status"], "approved");

    // The identical statement, on a new connection, runs once.
    drop(client);
    let client = proxy.connect("postgres", "airlock_test").await;
    let n = tokio::time::timeout(PATIENCE, client.execute(sql.as_str(), &[]))
        .await
        .expect("the re-run is not held")
        .expect("the re-run runs");
    assert_eq!(n, 1);
    assert_eq!(values(&t), [0, 1, 0, 0, 0], "ran exactly once");
    let r = request_until(admin, &id, |r| r["rows_affected"] == 1);
    assert_eq!(r["status"], "executed");
    assert!(r["executed_at"].is_i64(), "{r}");
    let ours: Vec<_> = requests_for(admin, "id = 2");
    assert_eq!(ours.len(), 1, "the re-run opened no request: {ours:#?}");

    // A third run is held again, as a new request.
    let sql3 = sql.clone();
    let held = tokio::spawn(async move { client.execute(sql3.as_str(), &[]).await });
    let again = pending_except(admin, "id = 2", &[&id]);
    assert_ne!(again["id"], id.as_str());
    assert_eq!(again["status"], "pending");
    let err = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("times out again")
        .unwrap()
        .expect_err("held again, and timed out");
    assert_eq!(db_error(&err).code(), &SqlState::QUERY_CANCELED);
    assert_eq!(values(&t), [0, 1, 0, 0, 0], "the grant was used up");
    let e = tokio::task::spawn_blocking(move || audit_entry(admin, "timeout", &id, |_| true))
        .await
        .unwrap();
    assert_eq!(e["outcome"], "pending", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_withdraws_a_held_statement() {
    let t = unique("ap_cancel");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let token = client.cancel_token();
    let sql = format!("UPDATE {t} SET v = 4 WHERE id = 1");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let r = pending_async(proxy.admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    let asked = Instant::now();
    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("the cancel ends the wait")
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(2));
    let err = result.expect_err("a cancelled statement fails");
    let db = db_error(&err);
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED, "{db:?}");
    assert!(
        db.detail().unwrap_or("").contains(&id),
        "says which request was withdrawn: {db:?}"
    );
    let admin = proxy.admin;
    let r = tokio::task::spawn_blocking({
        let id = id.clone();
        move || status_becomes(admin, &id, "cancelled")
    })
    .await
    .unwrap();
    assert!(r["executed_at"].is_null(), "{r}");
    assert_eq!(values(&t), [0; 5], "nothing ran");
    // A withdrawn request cannot be approved any more.
    let (status, body) = approve(proxy.admin, ALICE, &id);
    assert_eq!(status, 409, "{body}");
    // The session goes on, and a cancel with nothing held reaches nothing.
    let one: i32 = client.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert_eq!(values(&t), [0; 5]);
    let e = tokio::task::spawn_blocking(move || audit_entry(admin, "cancel", &id, |_| true))
        .await
        .unwrap();
    assert_eq!(e["outcome"], "cancelled", "{e}");
}

/// Ctrl-C in psql sends a CancelRequest: psql reports the cancel and the
/// request is withdrawn.
#[test]
fn ctrl_c_in_psql_withdraws_the_request() {
    let t = unique("ap_psql_cancel");
    table(&t);
    let proxy = proxy_with(|_| {});
    let mut child = spawn_psql(&proxy, &format!("UPDATE {t} SET v = 8 WHERE id = 3"));
    let r = pending(proxy.admin, &t);
    let id = r["id"].as_str().unwrap().to_string();
    still_running(&mut child, Duration::from_millis(100));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    assert!(stderr.contains(&id), "{stderr}");
    status_becomes(proxy.admin, &id, "cancelled");
    assert_eq!(values(&t), [0; 5]);
}

/// The client goes away while its statement is held: the request stays
/// pending; once approved, the same role re-running it runs it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_while_held_then_rerun_after_approval() {
    let t = unique("ap_gone");
    table(&t);
    let proxy = proxy_with(|_| {});
    let admin = proxy.admin;
    let sql = format!("UPDATE {t} SET v = v + 10 WHERE id >= 4");
    let (client, connection) = connect_with_task(&proxy).await;
    let held = tokio::spawn({
        let sql = sql.clone();
        async move { client.execute(sql.as_str(), &[]).await }
    });
    let r = pending_async(admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    // Drop the connection: the socket closes without a Terminate.
    connection.abort();
    let err = held.await.unwrap().expect_err("the connection is gone");
    assert!(err.is_closed() || err.as_db_error().is_none(), "{err:?}");
    // The proxy notices: the session is gone, the request stays pending.
    let gone = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) =
                common::http::call(admin, "GET", "/api/v1/sessions", Some(ALICE), None);
            assert_eq!(status, 200, "{body}");
            if body["items"].as_array().unwrap().is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(gone, "the session ends with its client");
    assert_eq!(request(admin, &id)["status"], "pending");
    let r = approve_ok(admin, BOB, &id);
    assert_eq!(r["status"], "approved", "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(values(&t), [0; 5], "nothing ran on the dead connection");
    assert_eq!(request(admin, &id)["status"], "approved");

    // Another role running the identical SQL does not get the grant.
    let role = unique("ap_other");
    direct(&format!(
        "CREATE ROLE {role} LOGIN; GRANT SELECT, UPDATE ON {t} TO {role}"
    ));
    let other = common::connect(&proxy.conninfo(&role, "airlock_test")).await;
    let token = other.cancel_token();
    let held = tokio::spawn({
        let sql = sql.clone();
        async move { other.execute(sql.as_str(), &[]).await }
    });
    let theirs = tokio::task::spawn_blocking({
        let (t, id) = (t.clone(), id.clone());
        move || pending_except(admin, &t, &[&id])
    })
    .await
    .unwrap();
    assert_eq!(theirs["requester"], role.as_str());
    token.cancel_query(NoTls).await.unwrap();
    held.await.unwrap().expect_err("cancelled");
    assert_eq!(request(admin, &id)["status"], "approved");
    assert_eq!(values(&t), [0; 5]);

    let client = proxy.connect("postgres", "airlock_test").await;
    let n = tokio::time::timeout(PATIENCE, client.execute(sql.as_str(), &[]))
        .await
        .expect("the re-run is not held")
        .expect("the re-run runs");
    assert_eq!(n, 2);
    assert_eq!(values(&t), [0, 0, 0, 10, 10], "ran exactly once");
    let r = request_until(admin, &id, |r| r["rows_affected"] == 2);
    assert_eq!(r["status"], "executed");
    // Once only: the next identical run is a new request.
    let token = client.cancel_token();
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let again = pending_except(admin, &t, &[&id, &theirs]);
    assert_ne!(again["id"], id.as_str());
    token.cancel_query(NoTls).await.unwrap();
    let err = held.await.unwrap().expect_err("cancelled");
    assert_eq!(db_error(&err).code(), &SqlState::QUERY_CANCELED);
    assert_eq!(values(&t), [0, 0, 0, 10, 10]);
}

/// A cancel that comes while the request is still being opened withdraws
/// it all the same: no request is left pending for a statement whose client
/// was told it was cancelled. (A cancel that arrives before the proxy has
/// read the query cancels nothing, as with PostgreSQL; the test then cancels
/// again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_cancel_leaves_no_request_pending() {
    let t = unique("ap_early");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = std::sync::Arc::new(proxy.connect("postgres", "airlock_test").await);
    for i in 0..40u64 {
        let token = client.cancel_token();
        let c = client.clone();
        let sql = format!("UPDATE {t} SET v = {i} WHERE id = 1");
        let mut held = tokio::spawn(async move { c.execute(sql.as_str(), &[]).await });
        tokio::time::sleep(Duration::from_micros(i * 100)).await;
        token.cancel_query(NoTls).await.unwrap();
        let result = match tokio::time::timeout(Duration::from_millis(200), &mut held).await {
            Ok(r) => r,
            Err(_) => {
                // The cancel came first: this one reaches the hold.
                token.cancel_query(NoTls).await.unwrap();
                tokio::time::timeout(PATIENCE, held)
                    .await
                    .expect("the cancel ends the wait")
            }
        };
        let err = result.unwrap().expect_err("cancelled");
        assert_eq!(db_error(&err).code(), &SqlState::QUERY_CANCELED, "{err:?}");
    }
    // The client is told first; the store hears of it just after.
    let admin = proxy.admin;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let all = tokio::task::spawn_blocking(move || requests(admin))
            .await
            .unwrap();
        let left: Vec<_> = all.iter().filter(|r| r["status"] != "cancelled").collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "requests whose client was told they were cancelled, not cancelled: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(values(&t), [0; 5]);
}

/// An approval is a grant for a limited time: a re-run after it lapsed is
/// held again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_grant_is_not_used() {
    let t = unique("ap_lapsed");
    table(&t);
    let proxy = proxy_with(|c| c.grant_lifetime = Duration::from_secs(1));
    let admin = proxy.admin;
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id = 1");
    let (client, connection) = connect_with_task(&proxy).await;
    let held = tokio::spawn({
        let sql = sql.clone();
        async move { client.execute(sql.as_str(), &[]).await }
    });
    let r = pending_async(admin, &t).await;
    let id = r["id"].as_str().unwrap().to_string();
    connection.abort();
    held.await.unwrap().expect_err("the connection is gone");
    let r = approve_ok(admin, ALICE, &id);
    assert_eq!(
        r["grant_expires_at"].as_i64().unwrap() - r["decided_at"].as_i64().unwrap(),
        1000,
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let client = proxy.connect("postgres", "airlock_test").await;
    let token = client.cancel_token();
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let again = tokio::task::spawn_blocking({
        let (t, id) = (t.clone(), id.clone());
        move || pending_except(admin, &t, &[&id])
    })
    .await
    .unwrap();
    assert_ne!(again["id"], id.as_str());
    token.cancel_query(NoTls).await.unwrap();
    held.await.unwrap().expect_err("cancelled");
    assert_ne!(request(admin, &id)["status"], "executed");
    assert_eq!(values(&t), [0; 5]);
}
