//! What the end-to-end tests of the hold share: reviewers and their tokens
//! (alice's, bob's and carol's are [`review`](super::review)'s too),
//! proxies with the shipped or a custom policy, tables of five rows read
//! straight from PostgreSQL, and the admin API calls a reviewer makes
//! (reading, approving and rejecting requests, also used by `review`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock::config::Reviewer;
use airlock::policy::Policy;
use airlock::Config;
use serde_json::Value;

use super::http::call;
use super::*;

/// In group `reviewers`.
pub const ALICE: &str = "alice-token-0000000000";
/// In group `reviewers`.
pub const BOB: &str = "bob-token-00000000000000";
/// In group `auditors` only: may read and comment, not decide.
pub const CAROL: &str = "carol-token-000000000000";
/// A reviewer whose name is the requesting role.
pub const SELF: &str = "postgres-token-000000000";
/// A reviewer who uses the requesting role (`roles = ["postgres"]`).
pub const DAVE: &str = "dave-token-0000000000000";

/// How long any wait for something that should happen may take.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// alice and bob in `reviewers`, carol in `auditors`, and two reviewers
/// whose requests are the `postgres` role's: `postgres` and dave.
pub fn reviewers() -> Vec<Reviewer> {
    let r = reviewer;
    vec![
        r("alice", ALICE, &["reviewers"], &[]),
        r("bob", BOB, &["reviewers"], &[]),
        r("carol", CAROL, &["auditors"], &[]),
        r("postgres", SELF, &["reviewers"], &[]),
        r("dave", DAVE, &["reviewers"], &["postgres"]),
    ]
}

fn config() -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.reviewers = reviewers();
    config
}

/// A proxy with the shipped policy and the reviewers.
pub fn proxy_with(f: impl FnOnce(&mut Config)) -> TestProxy {
    let mut config = config();
    f(&mut config);
    TestProxy::with_policy(config, None)
}

/// A proxy with the reviewers and a policy of `rules` (TOML).
pub fn proxy_with_rules(rules: &str) -> TestProxy {
    proxy_with_rules_and(rules, |_| {})
}

/// `proxy_with_rules`, with settings changed by `f`.
pub fn proxy_with_rules_and(rules: &str, f: impl FnOnce(&mut Config)) -> TestProxy {
    let policy = Policy::from_sources(&[("test.toml", rules)])
        .unwrap_or_else(|e| panic!("policy: {e:?}\n{rules}"));
    let mut config = config();
    f(&mut config);
    TestProxy::with_policy(config, Some(policy))
}

/// [`quick_rules`] with writes to `table` allowed first.
pub fn writes_allowed_to(table: &str) -> String {
    format!(
        r#"
[[rule]]
name = "writes-to-{table}"
kind = ["write"]
tables = ["{table}"]
action = "allow"
{}"#,
        quick_rules("1m")
    )
}

/// Reads, transaction control and session settings allowed; every other
/// statement needs one approval from `reviewers` within `timeout`.
pub fn quick_rules(timeout: &str) -> String {
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
name = "reviewed-writes"
action = "require_approval"
approvers = ["reviewers"]
approvals = 1
timeout = "{timeout}"
"#
    )
}

/// Runs `sql` straight against PostgreSQL (not through the proxy) and
/// returns its unaligned output.
pub fn direct(sql: &str) -> String {
    scalar("airlock_test", sql)
}

/// Creates `name (id int primary key, v int)` with rows 1..=5, all v = 0.
pub fn table(name: &str) {
    direct(&format!(
        "CREATE TABLE {name} (id int primary key, v int); \
         INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 5) g"
    ));
}

/// `v` of row `id`, read straight from PostgreSQL.
pub fn value(name: &str, id: i32) -> i32 {
    direct(&format!("select v from {name} where id = {id}"))
        .parse()
        .unwrap()
}

/// All `v` of `name` by id, read straight from PostgreSQL.
pub fn values(name: &str) -> Vec<i32> {
    direct(&format!("select v from {name} order by id"))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Rows of `name`, counted straight in PostgreSQL.
pub fn rows(name: &str) -> i64 {
    direct(&format!("select count(*) from {name}"))
        .parse()
        .unwrap()
}

/// Every request (any status), newest first.
pub fn requests(admin: SocketAddr) -> Vec<Value> {
    let (status, body) = call(
        admin,
        "GET",
        "/api/v1/requests?limit=500",
        Some(ALICE),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The requests whose SQL contains `needle`, newest first.
pub fn requests_for(admin: SocketAddr, needle: &str) -> Vec<Value> {
    requests(admin)
        .into_iter()
        .filter(|r| r["sql"].as_str().unwrap_or("").contains(needle))
        .collect()
}

/// Waits for a pending request whose SQL contains `needle` and whose id is
/// not in `except`.
pub fn pending_except(admin: SocketAddr, needle: &str, except: &[&str]) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = call(
            admin,
            "GET",
            "/api/v1/requests?status=pending",
            Some(ALICE),
            None,
        );
        assert_eq!(status, 200, "{body}");
        if let Some(r) = body["items"].as_array().unwrap().iter().find(|r| {
            r["sql"].as_str().unwrap_or("").contains(needle)
                && !except.contains(&r["id"].as_str().unwrap_or(""))
        }) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no pending request for {needle}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a pending request whose SQL contains `needle`.
pub fn pending(admin: SocketAddr, needle: &str) -> Value {
    pending_except(admin, needle, &[])
}

/// `pending` from async code.
pub async fn pending_async(admin: SocketAddr, needle: &str) -> Value {
    let needle = needle.to_string();
    tokio::task::spawn_blocking(move || pending(admin, &needle))
        .await
        .unwrap()
}

/// Request `id` as the API shows it.
pub fn request(admin: SocketAddr, id: &str) -> Value {
    let (status, body) = call(
        admin,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(BOB),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until request `id` satisfies `what`; returns it.
pub fn request_until(admin: SocketAddr, id: &str, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = request(admin, id);
        if what(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "request never got there: {r:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until request `id` has `status`; returns it.
pub fn status_becomes(admin: SocketAddr, id: &str, status: &str) -> Value {
    request_until(admin, id, |r| r["status"] == status)
}

/// Approves request `id` as `token`, with a comment.
pub fn approve(admin: SocketAddr, token: &str, id: &str) -> (u16, Value) {
    call(
        admin,
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        Some(token),
        Some(r#"{"comment": "looks fine"}"#),
    )
}

/// Approves, expecting success.
pub fn approve_ok(admin: SocketAddr, token: &str, id: &str) -> Value {
    let (status, body) = approve(admin, token, id);
    assert_eq!(status, 200, "approve {id}: {body}");
    body
}

/// Rejects request `id` as `token`, for `reason`.
pub fn reject(admin: SocketAddr, token: &str, id: &str, reason: &str) -> (u16, Value) {
    let body = serde_json::json!({ "reason": reason }).to_string();
    call(
        admin,
        "POST",
        &format!("/api/v1/requests/{id}/reject"),
        Some(token),
        Some(&body),
    )
}

/// Rejects, expecting success.
pub fn reject_ok(admin: SocketAddr, token: &str, id: &str, reason: &str) -> Value {
    let (status, body) = reject(admin, token, id, reason);
    assert_eq!(status, 200, "reject {id}: {body}");
    body
}

/// The audit trail, newest first.
pub fn audit(admin: SocketAddr) -> Vec<Value> {
    let (status, body) = call(admin, "GET", "/api/v1/audit?limit=1000", Some(CAROL), None);
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Waits for an audit entry of `event` for request `id` that satisfies
/// `what` (entries are written in the background); returns it.
pub fn audit_entry(
    admin: SocketAddr,
    event: &str,
    id: &str,
    what: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let trail = audit(admin);
        if let Some(e) = trail
            .iter()
            .find(|e| e["event"] == event && e["request_id"] == id && what(e))
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no matching {event} entry for {id} in {trail:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects tokio-postgres through `proxy`, returning the connection task
/// too, so that a test can drop the connection (abort the task) at will.
pub async fn connect_with_task(
    proxy: &TestProxy,
) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(
        &proxy.conninfo("postgres", "airlock_test"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect through the proxy");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

/// The SQLSTATE and message of a database error.
pub fn db_error(e: &tokio_postgres::Error) -> &tokio_postgres::error::DbError {
    e.as_db_error()
        .unwrap_or_else(|| panic!("not an error from the server: {e:?}"))
}

/// Starts psql through the proxy running `sql` with `-c`, its output piped.
pub fn spawn_psql(proxy: &TestProxy, sql: &str) -> Child {
    Command::new(&pg().psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .arg("-p")
        .arg(proxy.port().to_string())
        .args(["-U", "postgres", "-d", "airlock_test", "-c", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("PGPASSWORD")
        .spawn()
        .expect("start psql")
}

/// Asserts that `child` is still running `for_` from now.
pub fn still_running(child: &mut Child, for_: Duration) {
    std::thread::sleep(for_);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "psql finished while its statement was held"
    );
}

/// Waits for `child` to exit, at most `PATIENCE`; returns its output.
pub fn finish(child: Child) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => out.expect("psql output"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("psql did not finish");
        }
    }
}
