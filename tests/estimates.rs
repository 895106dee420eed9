//! Row estimates for held statements: EXPLAIN as the requesting role on a
//! separate connection, added to the request without delaying the hold.

mod common;

use std::time::{Duration, Instant};

use airlock::config::Reviewer;
use airlock::Config;
use common::http::call;
use common::*;

const TOKEN: &str = "reviewer-token-000000000";

fn setup(table: &str, role: &str, grant: bool) {
    let mut sql = format!(
        "CREATE TABLE {table} (id int primary key, v int);
         INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 1000) g;
         ANALYZE {table};
         CREATE ROLE {role} LOGIN;"
    );
    if grant {
        sql.push_str(&format!("GRANT SELECT, UPDATE ON {table} TO {role};"));
    }
    stdout_ok(&psql(pg().port, "postgres", "airlock_test", &["-qc", &sql]));
}

fn proxy() -> TestProxy {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.reviewers = vec![Reviewer {
        name: "rita".into(),
        token: TOKEN.into(),
        groups: vec!["reviewers".into()],
        roles: vec![],
    }];
    config.estimates = Some(direct_conninfo("postgres", "airlock_test"));
    TestProxy::with_policy(config, None)
}

/// The pending request for `needle`, once `field` is set (or the deadline).
fn request(admin: std::net::SocketAddr, needle: &str, field: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(
            admin,
            "GET",
            "/api/v1/requests?status=pending",
            Some(TOKEN),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let found = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sql"].as_str().unwrap_or("").contains(needle))
            .cloned();
        if let Some(r) = found {
            if !r[field].is_null() || Instant::now() > deadline {
                return r;
            }
        }
        assert!(Instant::now() < deadline, "no request for {needle}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_updates_carry_the_planner_estimate() {
    let t = unique("est_t");
    let role = unique("est_role");
    setup(&t, &role, true);
    let proxy = proxy();
    let client = proxy.connect(&role, "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 1 WHERE id <= 100");
    let _held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let admin = proxy.admin;
    let needle = t.clone();
    let r = tokio::task::spawn_blocking(move || request(admin, &needle, "estimate_rows"))
        .await
        .unwrap();
    let estimate = r["estimate_rows"].as_i64().expect("an estimate");
    assert!((50..=200).contains(&estimate), "about 100 rows: {estimate}");
    assert_eq!(r["requester"].as_str(), Some(role.as_str()));
    // Planning ran nothing.
    let out = psql(
        pg().port,
        "postgres",
        "airlock_test",
        &["-Atc", &format!("select count(*) from {t} where v = 1")],
    );
    assert_eq!(stdout_ok(&out).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimates_run_with_the_requesters_privileges() {
    // Without SELECT/UPDATE on the table, the requester cannot even plan it:
    // no estimate, and the hold itself is unaffected.
    let t = unique("est_p");
    let role = unique("est_noprivs");
    setup(&t, &role, false);
    let proxy = proxy();
    let client = proxy.connect(&role, "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 1 WHERE id <= 100");
    let _held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let admin = proxy.admin;
    let needle = t.clone();
    let r = tokio::task::spawn_blocking(move || {
        let first = request(admin, &needle, "id");
        std::thread::sleep(Duration::from_millis(1500));
        let _ = first;
        request(admin, &needle, "id")
    })
    .await
    .unwrap();
    assert!(r["estimate_rows"].is_null(), "{r}");
    assert_eq!(r["status"], "pending");
}
