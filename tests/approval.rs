//! Holding statements on the wire until reviewers decide, end to end:
//! real proxy, real PostgreSQL, tokio-postgres and psql clients, and the
//! admin API over HTTP.

mod common;

use std::time::{Duration, Instant};

use airlock::config::Reviewer;
use airlock::Config;
use common::http::call;
use common::*;

pub const ALICE: &str = "alice-token-0000000000";
pub const BOB: &str = "bob-token-00000000000000";
pub const CAROL: &str = "carol-token-000000000000";

fn reviewers() -> Vec<Reviewer> {
    let r = |name: &str, token: &str, groups: &[&str], roles: &[&str]| Reviewer {
        name: name.into(),
        token: token.into(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        r("alice", ALICE, &["reviewers"], &[]),
        r("bob", BOB, &["reviewers"], &[]),
        r("carol", CAROL, &["auditors"], &[]),
    ]
}

/// A proxy with the shipped policy and three reviewers.
fn proxy_with(f: impl FnOnce(&mut Config)) -> TestProxy {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.reviewers = reviewers();
    f(&mut config);
    TestProxy::with_policy(config, None)
}

fn table(name: &str) {
    let sql = format!(
        "CREATE TABLE {name} (id int primary key, v int); INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 5) g"
    );
    stdout_ok(&psql(pg().port, "postgres", "airlock_test", &["-qc", &sql]));
}

fn value(name: &str, id: i32) -> i32 {
    let out = psql(
        pg().port,
        "postgres",
        "airlock_test",
        &["-Atc", &format!("select v from {name} where id = {id}")],
    );
    stdout_ok(&out).trim().parse().unwrap()
}

/// Waits for exactly one pending request whose SQL contains `needle`.
fn pending(admin: std::net::SocketAddr, needle: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(
            admin,
            "GET",
            "/api/v1/requests?status=pending",
            Some(ALICE),
            None,
        );
        assert_eq!(status, 200, "{body}");
        if let Some(r) = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sql"].as_str().unwrap_or("").contains(needle))
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no pending request for {needle}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn approve(proxy: &TestProxy, token: &str, id: &str) -> (u16, serde_json::Value) {
    call(
        proxy.admin,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        Some(token),
        Some(r#"{"comment": "looks fine"}"#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_update_runs_on_the_same_connection() {
    let t = unique("ap_update");
    table(&t);
    let proxy = proxy_with(|_| {});
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 7 WHERE id <= 3");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let admin = proxy.admin;
    let needle = t.clone();
    let r = tokio::task::spawn_blocking(move || pending(admin, &needle))
        .await
        .unwrap();
    assert_eq!(r["status"], "pending");
    assert_eq!(r["requester"], "postgres");
    assert_eq!(r["database"], "airlock_test");
    assert_eq!(r["rule"], "writes");
    assert_eq!(r["approvals_required"], 1);
    assert_eq!(value(&t, 1), 0, "nothing ran before the approval");
    let id = r["id"].as_str().unwrap().to_string();
    let (status, body) = approve(&proxy, ALICE, &id);
    assert_eq!(status, 200, "{body}");
    let rows = held.await.unwrap().unwrap();
    assert_eq!(rows, 3, "the real result reaches the client");
    assert_eq!(value(&t, 1), 7);
    let (_, body) = call(
        proxy.admin,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(BOB),
        None,
    );
    assert_eq!(body["status"], "executed");
    assert_eq!(body["reviews"][0]["reviewer"], "alice");
}
