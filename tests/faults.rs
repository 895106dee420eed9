//! Faults and bad input: the upstream unreachable, malformed and oversized
//! client input, silent clients, a thousand idle clients, graceful
//! shutdown, SSL/GSS encryption requests and stray CancelRequests. Each case
//! must end cleanly, never panic the proxy and never disturb the other
//! sessions: most tests keep a healthy tokio-postgres session open through
//! the same proxy and check it at the end. Upstream stop/restart, which
//! needs a cluster of its own, lives in `faults_upstream.rs`.

mod common;
mod proxy_panics;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use airlock::protocol::startup::{
    cancel_request, startup_message, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE,
};
use airlock::Config;
use common::rawpg::*;
use common::*;
use tokio_postgres::error::SqlState;

/// How long the proxy may take to close a connection it has given up on.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// A proxied tokio-postgres session that must keep working.
async fn healthy(proxy: &TestProxy) -> tokio_postgres::Client {
    proxy_panics::watch();
    let c = proxy.connect("postgres", "airlock_test").await;
    still_healthy(&c).await;
    c
}

async fn still_healthy(c: &tokio_postgres::Client) {
    let row = c
        .query_one("select $1::int + 1", &[&41i32])
        .await
        .expect("the healthy session broke");
    assert_eq!(row.get::<_, i32>(0), 42);
    proxy_panics::assert_none();
}

/// A new session through the proxy starts and answers.
fn fresh_session_works(proxy: &TestProxy) {
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    assert_eq!(w.values("select 'fresh'"), ["fresh"]);
}

/// `msgs` is exactly one FATAL ErrorResponse with SQLSTATE `code`.
fn assert_fatal<'a>(msgs: &'a [Msg], code: &str, context: &str) -> &'a Msg {
    assert_eq!(msgs.len(), 1, "{context}: expected one FATAL, got {msgs:?}");
    let m = &msgs[0];
    assert!(m.is_fatal(), "{context}: {m:?}");
    assert_eq!(m.code().as_deref(), Some(code), "{context}: {m:?}");
    m
}

/// Connects raw, sends `bytes` and returns what the proxy answered before
/// it closed the connection.
fn send_and_close(proxy: &TestProxy, bytes: &[u8]) -> Vec<Msg> {
    let mut w = Wire::connect(proxy.addr);
    w.send(bytes);
    w.closed_within(CLOSE_WITHIN)
}

/// Waits until the upstream backend `pid` has gone away.
async fn backend_gone(c: &tokio_postgres::Client, pid: u32) {
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let row = c
            .query_one(
                "select count(*) from pg_stat_activity where pid = $1",
                &[&(pid as i32)],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "backend {pid} still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_unreachable_at_connect() {
    proxy_panics::watch();
    let port = airlock::cluster::free_port().unwrap();
    let upstream = format!("127.0.0.1:{port}");
    let proxy = TestProxy::with(Config::new(
        "127.0.0.1:0".parse().unwrap(),
        upstream.clone(),
    ));
    for attempt in 0..2 {
        let mut w = Wire::connect(proxy.addr);
        let mut msgs = w.startup(&[("user", "postgres"), ("database", "airlock_test")]);
        msgs.extend(w.closed_within(CLOSE_WITHIN));
        let m = assert_fatal(&msgs, "08001", &format!("attempt {attempt}"));
        let text = m.field(b'M').unwrap();
        assert!(
            text.contains(&upstream),
            "message must name {upstream}: {text}"
        );
    }
    let err = tokio_postgres::connect(&proxy.conninfo("postgres", "x"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("connecting must fail");
    assert_eq!(
        err.code(),
        Some(&SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
        "{err}"
    );
    assert_eq!(proxy.proxy.metrics.upstream_connect_errors.load(Relaxed), 3);
    proxy_panics::assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_startup_packet() {
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    let before = proxy.proxy.metrics.client_protocol_errors.load(Relaxed);

    // An HTTP request: its first four bytes make an absurd length.
    let msgs = send_and_close(&proxy, b"GET / HTTP/1.1\r\nHost: db\r\n\r\n");
    assert_fatal(&msgs, "08P01", "HTTP request");
    // Absurd lengths, huge and too small.
    for len in [u32::MAX, 0x7fff_ffff, 10_001, 0, 3, 7] {
        let mut p = len.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 3, 0, 0]);
        let msgs = send_and_close(&proxy, &p);
        assert_fatal(&msgs, "08P01", &format!("length {len}"));
    }
    // A sound length around an unknown protocol version.
    let mut p = startup_message(&[("user", "postgres")]);
    p[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_fatal(&send_and_close(&proxy, &p), "08P01", "unknown version");
    // Parameters that do not end in a NUL.
    let mut p = startup_message(&[("user", "postgres")]);
    let n = p.len();
    p[n - 1] = b'x';
    assert_fatal(&send_and_close(&proxy, &p), "08P01", "unterminated");
    // No user.
    let p = startup_message(&[("database", "airlock_test")]);
    let msgs = send_and_close(&proxy, &p);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].is_fatal(), "{msgs:?}");

    let after = proxy.proxy.metrics.client_protocol_errors.load(Relaxed);
    assert!(
        after >= before + 9,
        "protocol errors counted: {before} -> {after}"
    );
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_startup_packet_then_close() {
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    let packet = startup_message(&[("user", "postgres"), ("database", "airlock_test")]);
    for cut in [1, 4, 10, packet.len() - 1] {
        let mut w = Wire::connect(proxy.addr);
        w.send(&packet[..cut]);
        w.stream.shutdown(Shutdown::Write).unwrap();
        let msgs = w.closed_within(CLOSE_WITHIN);
        assert!(msgs.is_empty(), "cut at {cut}: {msgs:?}");
    }
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_time_out() {
    let proxy = TestProxy::with_config(|c| c.startup_timeout = Duration::from_secs(1));
    let client = healthy(&proxy).await;
    let packet = startup_message(&[("user", "postgres"), ("database", "airlock_test")]);
    // One sends nothing at all, one stops half way through its packet.
    let started = Instant::now();
    let mut silent = Wire::connect(proxy.addr);
    let mut halfway = Wire::connect(proxy.addr);
    halfway.send(&packet[..packet.len() / 2]);
    for w in [&mut silent, &mut halfway] {
        let msgs = w.closed_within(CLOSE_WITHIN);
        assert!(msgs.is_empty(), "{msgs:?}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "closed after {took:?}, want about the 1 s startup timeout"
    );
    // An established session is not subject to the startup timeout.
    let mut idle = Wire::open(proxy.addr, "postgres", "airlock_test");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(idle.values("select 'still here'"), ["still here"]);
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_a_good_startup() {
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    let cases: [(&str, &[u8]); 5] = [
        ("unknown type 0x01", b"\x01\0\0\0\x04"),
        ("unknown type 'z'", b"z\0\0\0\x08abcd"),
        ("a second startup packet", b"\0\0\0\x08\x04\xd2\x16\x2f"),
        ("length 2", b"Q\0\0\0\x02"),
        ("length 0", b"S\0\0\0\0"),
    ];
    for (what, bytes) in cases {
        let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
        assert_eq!(w.values("select 1"), ["1"], "{what}");
        let pid = w.pid;
        w.send(bytes);
        let msgs = w.closed_within(CLOSE_WITHIN);
        assert_fatal(&msgs, "08P01", what);
        backend_gone(&client, pid).await;
    }
    // Bad bytes right behind a statement: PostgreSQL runs the statement
    // and answers it before it reads them, so the client learns that its
    // insert committed. Through the proxy the answer must arrive as well.
    let table = unique("garbage");
    client
        .batch_execute(&format!("create table {table} (id int)"))
        .await
        .unwrap();
    let direct_addr = pg().addr.parse().unwrap();
    for (what, garbage) in [
        ("length 3", &b"P\0\0\0\x03"[..]),
        ("type 0x01", b"\x01\0\0\0\x04"),
    ] {
        let mut bytes = query(format!("insert into {table} values (1)").as_bytes());
        bytes.extend_from_slice(garbage);
        let mut direct = Wire::open(direct_addr, "postgres", "airlock_test");
        direct.send(&bytes);
        let direct = direct.closed_within(CLOSE_WITHIN);
        assert_eq!(&tags(&direct)[..2], "CZ", "{what}: PostgreSQL: {direct:?}");
        let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
        w.send(&bytes);
        let msgs = w.closed_within(CLOSE_WITHIN);
        assert!(
            tags(&msgs).starts_with("CZ"),
            "{what}: the answer to the statement before the bad bytes was lost: {msgs:?} \
             (PostgreSQL answers {direct:?})"
        );
        assert_fatal(&msgs[2..], "08P01", what);
    }
    let row = client
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 4, "every insert ran");
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_max_message_size() {
    let proxy = TestProxy::with_config(|c| c.max_message_size = 4096);
    let client = healthy(&proxy).await;
    let sql = |n: usize| format!("select length('{}')", "x".repeat(n));

    // Just under the limit is fine.
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    assert_eq!(w.values(&sql(4000)), ["4000"]);
    // COPY data is streamed and not limited.
    let msgs = w.simple("create temp table big (t text)");
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    let mut copy = query(b"copy big from stdin");
    copy.extend(copy_data(&[b"y".repeat(20_000), b"\n".to_vec()].concat()));
    copy.extend(copy_done());
    w.send(&copy);
    let msgs = w.until(b'Z', 1);
    assert!(first_error(&msgs).is_none(), "{msgs:?}");
    assert_eq!(w.values("select length(t) from big"), ["20000"]);

    // Over it: a Query, and a Parse, each ends the session with 54000
    // (program_limit_exceeded), as the server's own limits do.
    for (what, msg) in [
        ("Query", query(sql(4200).as_bytes())),
        ("Parse", parse(b"", sql(5000).as_bytes(), &[])),
        ("huge announced length", b"Q\x7f\xff\xff\xffselect".to_vec()),
    ] {
        let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
        let pid = w.pid;
        w.send(&msg);
        let msgs = w.closed_within(CLOSE_WITHIN);
        let m = assert_fatal(&msgs, "54000", what);
        assert!(m.field(b'M').unwrap().contains("4096"), "{m:?}");
        backend_gone(&client, pid).await;
    }
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_clients() {
    const N: usize = 1000;
    const BATCH: usize = 50;
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    let app = unique("idle");
    let packet = startup_message(&[
        ("user", "postgres"),
        ("database", "airlock_test"),
        ("application_name", &app),
    ]);
    let started = Instant::now();
    let mut idle: Vec<Wire> = Vec::with_capacity(N);
    while idle.len() < N {
        let batch: Vec<Wire> = (0..BATCH)
            .map(|_| {
                let mut w = Wire::connect(proxy.addr);
                w.send(&packet);
                w
            })
            .collect();
        for mut w in batch {
            let msgs = w.until(b'Z', 1);
            assert!(
                first_error(&msgs).is_none(),
                "client {}: {msgs:?}",
                idle.len()
            );
            idle.push(w);
        }
    }
    eprintln!("{N} sessions started in {:?}", started.elapsed());

    assert_eq!(
        proxy.proxy.metrics.sessions_active.load(Relaxed),
        N as u64 + 1,
        "sessions_active with {N} idle clients and the healthy one"
    );
    fresh_session_works(&proxy);
    let row = client
        .query_one(
            "select count(*) from pg_stat_activity where application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), N as i64, "upstream sessions");
    // A few of them still answer.
    for i in [0, N / 2, N - 1] {
        assert_eq!(idle[i].values("select 2"), ["2"], "client {i}");
    }

    for (i, w) in idle.iter_mut().enumerate() {
        if i % 2 == 0 {
            w.send(&terminate());
        }
    }
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.proxy.metrics.sessions_active.load(Relaxed) > 1 {
        assert!(
            Instant::now() < deadline,
            "sessions_active stuck at {}",
            proxy.proxy.metrics.sessions_active.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = client
            .query_one(
                "select count(*) from pg_stat_activity where application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "upstream sessions left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    still_healthy(&client).await;
}

/// Runs `drop(proxy)` on a thread of its own; returns how long it took.
fn drop_in_background(proxy: TestProxy) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let started = Instant::now();
        drop(proxy);
        started.elapsed()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_transactions_finish() {
    proxy_panics::watch();
    let table = unique("shutdown");
    let direct = connect(&direct_conninfo("postgres", "airlock_test")).await;
    direct
        .batch_execute(&format!("create table {table} (id int)"))
        .await
        .unwrap();
    let proxy = TestProxy::with_config(|c| c.shutdown_timeout = Duration::from_secs(5));
    let addr = proxy.addr;
    let mut idle = Wire::open(addr, "postgres", "airlock_test");
    let mut tx = Wire::open(addr, "postgres", "airlock_test");
    let msgs = tx.simple(&format!("begin; insert into {table} values (1)"));
    assert_eq!(msgs.last().unwrap().body, b"T", "{msgs:?}");
    let mut busy = Wire::open(addr, "postgres", "airlock_test");
    let sleep = format!("select pg_sleep(1) -- {table}");
    busy.send(&query(sleep.as_bytes()));
    until_running(None, &sleep).await;

    let dropper = drop_in_background(proxy);
    let msgs = idle.closed_within(CLOSE_WITHIN);
    assert_fatal(&msgs, "57P01", "idle session");
    // The running statement finishes, then the session is told.
    let msgs = busy.closed_within(CLOSE_WITHIN);
    assert_eq!(tags(&msgs), "TDCZE", "{msgs:?}");
    assert_fatal(&msgs[4..], "57P01", "busy session");
    // New clients are turned away.
    match TcpStream::connect(addr) {
        Err(_) => {}
        Ok(mut s) => {
            let _ = s.set_read_timeout(Some(CLOSE_WITHIN));
            let _ = s.write_all(&startup_message(&[("user", "postgres")]));
            let mut b = [0u8; 1];
            assert!(
                !matches!(s.read(&mut b), Ok(n) if n > 0 && b[0] == b'R'),
                "a new session started during shutdown"
            );
        }
    }
    // The transaction is left alone, may go on, and ends the session once
    // it is over.
    assert!(tx.quiet_for(Duration::from_millis(300)).is_ok());
    let msgs = tx.simple(&format!("insert into {table} values (2)"));
    assert_eq!(tags(&msgs), "CZ", "{msgs:?}");
    tx.send(&query(b"commit"));
    let msgs = tx.closed_within(CLOSE_WITHIN);
    assert_eq!(tags(&msgs), "CZE", "{msgs:?}");
    assert_eq!(msgs[1].body, b"I");
    assert_fatal(&msgs[2..], "57P01", "session after its commit");

    let took = dropper.join().expect("drop");
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    let rows = direct
        .query(&format!("select id from {table} order by id"), &[])
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2], "the transaction committed");
    proxy_panics::assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_ends_unfinished_transactions() {
    proxy_panics::watch();
    let table = unique("shutdown");
    let direct = connect(&direct_conninfo("postgres", "airlock_test")).await;
    direct
        .batch_execute(&format!("create table {table} (id int)"))
        .await
        .unwrap();
    let proxy = TestProxy::with_config(|c| c.shutdown_timeout = Duration::from_secs(1));
    let mut tx = Wire::open(proxy.addr, "postgres", "airlock_test");
    let pid = tx.pid;
    let msgs = tx.simple(&format!("begin; insert into {table} values (1)"));
    assert_eq!(msgs.last().unwrap().body, b"T", "{msgs:?}");

    let dropper = drop_in_background(proxy);
    let msgs = tx.closed_within(CLOSE_WITHIN);
    assert!(msgs.iter().all(|m| m.is_fatal()), "{msgs:?}");
    let took = dropper.join().expect("drop");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "shutdown took {took:?}, want about the 1 s timeout"
    );
    backend_gone(&direct, pid).await;
    let row = direct
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        0,
        "the unfinished transaction rolled back"
    );
    proxy_panics::assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_and_gssenc_requests_are_declined() {
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    for codes in [
        &[SSL_REQUEST_CODE][..],
        &[GSSENC_REQUEST_CODE],
        &[GSSENC_REQUEST_CODE, SSL_REQUEST_CODE],
    ] {
        let mut w = Wire::connect(proxy.addr);
        for &code in codes {
            w.send(&request(code));
            let mut answer = [0u8; 1];
            w.stream.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
            w.stream.read_exact(&mut answer).unwrap();
            assert_eq!(answer[0], b'N', "answer to request {code}");
        }
        let msgs = w.startup(&[("user", "postgres"), ("database", "airlock_test")]);
        assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{msgs:?}");
        assert_eq!(w.values("select 'plain'"), ["plain"]);
    }
    // libpq: sslmode=prefer falls back to a plain session, require gives up.
    let run = |mode: &str| {
        std::process::Command::new(&pg().psql)
            .args(["-X", "-A", "-t", "-c", "select 'psql ok'"])
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname=airlock_test sslmode={mode} \
                 gssencmode=prefer",
                proxy.port()
            ))
            .output()
            .expect("run psql")
    };
    let out = run("prefer");
    assert_eq!(stdout_ok(&out).trim(), "psql ok");
    let out = run("require");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SSL"), "{stderr}");
    still_healthy(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_requests_with_unknown_keys_do_nothing() {
    let proxy = TestProxy::start();
    let client = healthy(&proxy).await;
    let mut w = Wire::open(proxy.addr, "postgres", "airlock_test");
    let send_cancel = |pid: u32, secret: u32| {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.write_all(&cancel_request(pid, secret)).unwrap();
        s.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
        let mut rest = Vec::new();
        // The proxy answers a CancelRequest with nothing but the close.
        let n = s.read_to_end(&mut rest);
        assert!(
            matches!(n, Ok(0)),
            "answer to a CancelRequest: {n:?} {rest:?}"
        );
    };

    w.send(&query(b"select pg_sleep(1)"));
    std::thread::sleep(Duration::from_millis(200));
    let (pid, secret) = (w.pid, w.secret);
    send_cancel(pid, secret ^ 1);
    send_cancel(pid, secret.wrapping_add(0x0100_0000));
    send_cancel(pid ^ 0x4000, secret);
    send_cancel(0, 0);
    send_cancel(u32::MAX, u32::MAX);
    let msgs = w.until(b'Z', 1);
    assert!(
        first_error(&msgs).is_none(),
        "a wrong key cancelled: {msgs:?}"
    );
    assert_eq!(tags(&msgs), "TDCZ");
    assert_eq!(proxy.proxy.metrics.cancel_requests.load(Relaxed), 5);
    assert_eq!(w.values("select 'unharmed'"), ["unharmed"]);

    // The right keys do cancel: the wrong ones above were tested against a
    // working cancel path.
    let sleep = format!("select pg_sleep(20) -- {}", unique("cancel"));
    w.send(&query(sleep.as_bytes()));
    until_running(None, &sleep).await;
    let started = Instant::now();
    send_cancel(pid, secret);
    let msgs = w.until(b'Z', 1);
    let e = first_error(&msgs).expect("the right keys cancel");
    assert_eq!(e.code().as_deref(), Some("57014"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(w.values("select 'after cancel'"), ["after cancel"]);
    fresh_session_works(&proxy);
    still_healthy(&client).await;
}
