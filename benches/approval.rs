//! `cargo bench --bench approval`: how long after a reviewer's approving API
//! call returns does the held statement's result reach the client? Target:
//! under 10 ms at p99. Runs the real proxy (in process) in front of a
//! throwaway PostgreSQL, with a SQLite store and the admin API on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::cluster::{ClusterOptions, TempCluster};
use airlock::config::Reviewer;
use airlock::{Config, Proxy};

const TOKEN: &str = "bench-reviewer-token-0000";

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// The id of the one pending request, once there is one.
fn pending_id(admin: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http(admin, "GET", "/api/v1/requests?status=pending&limit=1", "");
        if let Some(at) = body.find("\"id\":\"") {
            let rest = &body[at + 6..];
            return rest[..rest.find('"').unwrap()].to_string();
        }
        assert!(Instant::now() < deadline, "no pending request");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("approval benchmark: skipped (run `cargo bench --bench approval`)");
        return;
    }
    let n: usize = std::env::var("AIRLOCK_BENCH_APPROVALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cluster = TempCluster::start(&ClusterOptions::default()).expect("PostgreSQL");
    cluster
        .psql(
            "postgres",
            "CREATE TABLE counter (id int primary key, v bigint); INSERT INTO counter VALUES (1, 0)",
        )
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("airlock-bench-approval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let latencies = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let mut config = Config::new(addr, cluster.addr());
        config.reviewers = vec![Reviewer {
            name: "rita".into(),
            token: TOKEN.into(),
            groups: vec!["reviewers".into()],
            roles: vec![],
        }];
        let proxy = Proxy::new(config);
        let store = airlock::store::Store::open(&format!("sqlite://{}/store.db", dir.display()))
            .await
            .unwrap();
        let _ = proxy.approvals.set(airlock::approval::Approvals::start(
            store,
            Default::default(),
        ));
        tokio::spawn(Arc::clone(&proxy).serve(listener, std::future::pending()));
        tokio::spawn(airlock::admin::serve(
            admin_listener,
            proxy,
            std::future::pending(),
        ));
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                addr.port()
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let client = Arc::new(client);
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let c = Arc::clone(&client);
            let held = tokio::spawn(async move {
                c.execute("UPDATE counter SET v = v + 1 WHERE id = 1", &[])
                    .await
                    .unwrap();
                Instant::now()
            });
            let id = tokio::task::spawn_blocking(move || pending_id(admin))
                .await
                .unwrap();
            let responded = tokio::task::spawn_blocking(move || {
                let (status, body) = http(
                    admin,
                    "POST",
                    &format!("/api/v1/requests/{id}/approve"),
                    "{}",
                );
                assert_eq!(status, 200, "{body}");
                Instant::now()
            })
            .await
            .unwrap();
            let done = held.await.unwrap();
            latencies.push(done.saturating_duration_since(responded));
        }
        latencies
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut us: Vec<u128> = latencies.iter().map(|d| d.as_micros()).collect();
    us.sort();
    let pct = |p: f64| us[((us.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    println!("approval latency: from the approve call's response to the result at the client");
    println!(
        "  {} approvals: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        us.len(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    let p99 = pct(0.99);
    println!(
        "  target p99 < 10 ms: {} ({p99:.2} ms)",
        if p99 < 10.0 { "PASS" } else { "MISS" }
    );
}
