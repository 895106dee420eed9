//! Helpers shared by the admin API, PostgreSQL store and restart tests:
//! their reviewers and tokens, proxies with them, fresh databases and
//! PostgreSQL stores, polling the admin API, checking JSON error bodies,
//! Prometheus text and a Server-Sent Events reader on a raw socket.
//!
//! What these tests share with the tests of the hold (alice's, bob's and
//! carol's tokens, five-row tables, reading, approving and rejecting
//! requests) is [`approval`](super::approval)'s, re-exported here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use airlock::config::Reviewer;
use airlock::policy::Policy;
use airlock::Config;
use serde_json::Value;

use super::http::call;
use super::*;

// Re-exported for the tests' `use common::review::*`; a binary that uses
// only some of them would warn of the rest, as `allow(dead_code)` in
// `common` does for items.
#[allow(unused_imports)]
pub use super::approval::{
    approve, reject, request, requests_for, table, value, ALICE, BOB, CAROL,
};
pub use super::http::raw;

/// A reviewer named `postgres`, like the role the tests connect as.
pub const SELF_NAMED: &str = "postgres-reviewer-token-0";
/// Reviewer `dba` in `reviewers`, whose `roles` include `postgres`.
pub const DBA: &str = "dba-token-00000000000000";

/// alice and bob in `reviewers`, carol in `auditors`, and two reviewers
/// whose requests are the `postgres` role's: `postgres` and dba.
pub fn reviewers() -> Vec<Reviewer> {
    vec![
        reviewer("alice", ALICE, &["reviewers"], &[]),
        reviewer("bob", BOB, &["reviewers"], &[]),
        reviewer("carol", CAROL, &["auditors"], &[]),
        reviewer("postgres", SELF_NAMED, &["reviewers"], &[]),
        reviewer("dba", DBA, &["reviewers"], &["postgres"]),
    ]
}

/// A config in front of the shared cluster with the reviewers above.
pub fn config() -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.reviewers = reviewers();
    config
}

/// A proxy with the shipped policy, the reviewers above and `f`'s changes.
pub fn proxy(f: impl FnOnce(&mut Config)) -> TestProxy {
    let mut c = config();
    f(&mut c);
    TestProxy::with_policy(c, None)
}

/// Reads allowed, session and transaction statements allowed, every other
/// statement held for one approval from `reviewers` for `timeout` (`2s`).
pub fn quick_policy(timeout: &str) -> Policy {
    let text = format!(
        "[[rule]]\nname = \"reads\"\nkind = [\"read\"]\naction = \"allow\"\n\n\
         [[rule]]\nname = \"session\"\nkind = [\"session\", \"transaction\"]\naction = \"allow\"\n\n\
         [[rule]]\nname = \"quick-writes\"\naction = \"require_approval\"\n\
         approvers = [\"reviewers\"]\napprovals = 1\ntimeout = \"{timeout}\"\n"
    );
    Policy::from_sources(&[("quick.toml", &text)]).expect("quick policy")
}

/// The sum of `v` over the table, read straight from the cluster.
pub fn total(name: &str) -> i64 {
    scalar(
        "airlock_test",
        &format!("select coalesce(sum(v), 0) from {name}"),
    )
    .parse()
    .unwrap()
}

/// A fresh database on the shared cluster; returns its name.
pub fn database(prefix: &str) -> String {
    let name = unique(prefix);
    stdout_ok(&psql(
        pg().port,
        "postgres",
        "postgres",
        &["-qc", &format!("CREATE DATABASE {name}")],
    ));
    name
}

/// A fresh PostgreSQL store URL on the shared cluster.
pub fn pg_store_url(prefix: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        pg().port,
        database(prefix)
    )
}

/// Waits for the one request (of `status`, if given) whose SQL contains
/// `needle`, up to 15 s.
pub fn wait_request(admin: SocketAddr, needle: &str, status: Option<&str>) -> Value {
    let path = match status {
        Some(s) => format!("/api/v1/requests?status={s}&limit=500"),
        None => "/api/v1/requests?limit=500".to_string(),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, body) = call(admin, "GET", &path, Some(ALICE), None);
        assert_eq!(code, 200, "{body}");
        let found: Vec<&Value> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|r| r["sql"].as_str().unwrap_or("").contains(needle))
            .collect();
        assert!(
            found.len() <= 1,
            "more than one request for {needle}: {body}"
        );
        if let Some(r) = found.first() {
            return (*r).clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {status:?} request for {needle}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Waits for the one pending request whose SQL contains `needle`.
pub fn pending(admin: SocketAddr, needle: &str) -> Value {
    wait_request(admin, needle, Some("pending"))
}

/// Waits until request `id` has `status`, up to 15 s.
pub fn wait_status(admin: SocketAddr, id: &str, status: &str) -> Value {
    request_until(admin, id, |r| r["status"] == status)
}

/// Waits until request `id` satisfies `what`, up to 15 s; returns it. Some
/// fields (the outcome of a run) are written after the client already has
/// its answer. (As [`approval::request_until`](super::approval::request_until),
/// with the 15 s these tests have always given it.)
pub fn request_until(admin: SocketAddr, id: &str, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = request(admin, id);
        if what(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "request {id} never got there: {r}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Asserts an error answer: the status, and a body that is exactly
/// `{"error": {"code": <code>, "message": <non-empty>}}`.
pub fn assert_error(what: &str, got: (u16, Value), status: u16, code: &str) {
    let (s, body) = got;
    assert_eq!(s, status, "{what}: status {s}, body {body}");
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: the error body is not a JSON object: {body}"));
    assert_eq!(obj.len(), 1, "{what}: only \"error\" expected: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        !message.trim().is_empty(),
        "{what}: the error needs a message: {body}"
    );
}

/// The audit entries of request `id`, oldest first.
pub fn audit_of(admin: SocketAddr, id: &str) -> Vec<Value> {
    let (code, body) = call(admin, "GET", "/api/v1/audit?limit=1000", Some(ALICE), None);
    assert_eq!(code, 200, "{body}");
    let mut v: Vec<Value> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["request_id"] == id)
        .cloned()
        .collect();
    v.reverse();
    v
}

/// Waits until the audit trail of `id` has an entry `event`; returns the
/// trail.
pub fn wait_audit(admin: SocketAddr, id: &str, event: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = audit_of(admin, id);
        if trail.iter().any(|e| e["event"] == event) {
            return trail;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} audit entry for {id}: {trail:?}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// `call` off the async runtime's worker threads.
pub async fn acall(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (method, path) = (method.to_string(), path.to_string());
    let (token, body) = (token.map(str::to_string), body.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        call(addr, &method, &path, token.as_deref(), body.as_deref())
    })
    .await
    .unwrap()
}

/// Runs a blocking helper off the async runtime's worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `raw`, with the body parsed as JSON (`Null` when it is not JSON).
pub fn raw_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, Value) {
    let (status, _, body) = raw(addr, method, path, headers, body);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The samples of `/metrics` by name (without the `airlock_` prefix).
pub fn metrics(admin: SocketAddr) -> HashMap<String, f64> {
    let (status, head, body) = raw(admin, "GET", "/metrics", &[], None);
    assert_eq!(status, 200, "{head}\n{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            Some((
                name.trim_start_matches("airlock_").to_string(),
                v.parse().ok()?,
            ))
        })
        .collect()
}

/// Waits until metric `name` reads `want`.
pub fn wait_metric(admin: SocketAddr, name: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(admin);
        let got = *m
            .get(name)
            .unwrap_or_else(|| panic!("no metric {name}: {m:?}"));
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {got}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub id: String,
    pub data: Value,
}

/// `GET /api/v1/events` read on a raw socket.
pub struct Events {
    reader: BufReader<TcpStream>,
    chunked: bool,
    text: String,
}

impl Events {
    /// Opens the stream; panics unless it answers 200 with
    /// `text/event-stream`.
    pub fn open(admin: SocketAddr, token: &str) -> Events {
        let mut s = TcpStream::connect(admin).expect("connect admin");
        write!(
            s,
            "GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = reader
                .read_line(&mut line)
                .expect("read the event stream's head");
            assert!(n > 0, "the event stream closed in its head: {head}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let lower = head.to_ascii_lowercase();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(lower.contains("content-type: text/event-stream"), "{head}");
        Events {
            reader,
            chunked: lower.contains("transfer-encoding: chunked"),
            text: String::new(),
        }
    }

    /// Reads more of the body into `text`; false at the end of the stream
    /// or when nothing came before `deadline`.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        if self.chunked {
            let mut size = String::new();
            while size.trim().is_empty() {
                size.clear();
                if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return false;
                }
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                panic!("bad chunk size line {size:?}");
            };
            if n == 0 {
                return false;
            }
            let mut chunk = vec![0; n + 2];
            // Once a chunk has started, its rest follows at once.
            self.reader
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            if self.reader.read_exact(&mut chunk).is_err() {
                return false;
            }
            self.text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        } else {
            let mut buf = [0; 4096];
            match self.reader.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        true
    }

    /// The next event before `deadline` (keep-alive comments skipped).
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            let text = self.text.replace("\r\n", "\n");
            if let Some((block, rest)) = text.split_once("\n\n") {
                self.text = rest.to_string();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                return Some(Event { name, id, data });
            }
            self.text = text;
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// Every event of request `id` until one named in `until` arrives,
    /// within `within`; panics if none does.
    pub fn until(&mut self, id: &str, until: &[&str], within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let Some(ev) = self.next(deadline) else {
                panic!("no {until:?} event for {id} within {within:?}; saw {seen:?}");
            };
            if ev.id != id {
                continue;
            }
            let done = until.contains(&ev.name.as_str());
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }

    /// The first event of a request whose SQL contains `needle`.
    pub fn first_for_sql(&mut self, needle: &str, within: Duration) -> Event {
        let deadline = Instant::now() + within;
        loop {
            let Some(ev) = self.next(deadline) else {
                panic!("no event for a request with {needle} within {within:?}");
            };
            if ev.data["sql"].as_str().unwrap_or("").contains(needle) {
                return ev;
            }
        }
    }
}

/// Connects as `postgres` and runs `sql` in a task: the held statement.
pub async fn hold(
    proxy: &TestProxy,
    sql: String,
) -> (
    tokio::task::JoinHandle<Result<u64, tokio_postgres::Error>>,
    tokio_postgres::CancelToken,
) {
    let client = proxy.connect("postgres", "airlock_test").await;
    let cancel = client.cancel_token();
    let task = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    (task, cancel)
}

/// Waits for the pending request of a statement on `t`.
pub async fn pending_on(proxy: &TestProxy, t: &str) -> (String, Value) {
    let (admin, t) = (proxy.admin, t.to_string());
    let r = blocking(move || pending(admin, &t)).await;
    (r["id"].as_str().unwrap().to_string(), r)
}
