//! The upstream going away under connected clients: a fast shutdown, a
//! crashed backend, a killed postmaster, and the server coming back. These
//! tests stop and start PostgreSQL, so each runs its own cluster, owned by
//! the test thread (the server is tied to the thread that started it, see
//! `airlock::cluster`), and never the shared one.

mod common;
mod proxy_panics;

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use airlock::cluster::{ClusterOptions, StopMode, TempCluster};
use airlock::Config;
use common::rawpg::*;
use common::TestProxy;

/// How long a client may wait for the consequences of an upstream event.
const WITHIN: Duration = Duration::from_secs(15);

fn cluster() -> TempCluster {
    proxy_panics::watch();
    TempCluster::start(&ClusterOptions::default()).expect("start PostgreSQL")
}

fn proxy_for(cluster: &TempCluster) -> TestProxy {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), cluster.addr());
    config.connect_timeout = Duration::from_secs(2);
    TestProxy::with(config)
}

/// `n` proxied sessions, each checked with a query.
fn sessions(proxy: &TestProxy, n: usize) -> Vec<Wire> {
    (0..n)
        .map(|i| {
            let mut w = Wire::open(proxy.addr, "postgres", "postgres");
            assert_eq!(w.values("select 1"), ["1"], "session {i}");
            w
        })
        .collect()
}

/// Starts the server again; after a crash, old backends may hold the
/// shared memory for a moment, so it retries.
fn restart(cluster: &mut TempCluster) {
    let deadline = Instant::now() + WITHIN;
    loop {
        match cluster.start_server() {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("restart failed, retrying: {e:#}");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("restart: {e:#}"),
        }
    }
}

/// Waits until a session through the proxy works (after crash recovery).
fn wait_until_serving(proxy: &TestProxy) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut w = Wire::connect(proxy.addr);
        let msgs = w.startup(&[("user", "postgres"), ("database", "postgres")]);
        if msgs.last().map(|m| m.tag) == Some(b'Z') {
            assert_eq!(w.values("select 'back'"), ["back"]);
            return;
        }
        assert!(Instant::now() < deadline, "not serving again: {msgs:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every session is told with a FATAL error and closed; returns what each
/// received.
fn all_told_and_closed(clients: &mut [Wire], context: &str) -> Vec<Vec<Msg>> {
    clients
        .iter_mut()
        .enumerate()
        .map(|(i, w)| {
            let msgs = w.closed_within(WITHIN);
            let errors: Vec<&Msg> = msgs.iter().filter(|m| m.is_error()).collect();
            assert_eq!(
                errors.len(),
                1,
                "{context}: session {i} wants exactly one error: {msgs:?}"
            );
            assert!(errors[0].is_fatal(), "{context}: session {i}: {msgs:?}");
            assert_eq!(
                msgs.last(),
                Some(errors[0]),
                "{context}: session {i}: the error comes last: {msgs:?}"
            );
            msgs
        })
        .collect()
}

#[test]
fn fast_shutdown_and_restart() {
    let mut cluster = cluster();
    let proxy = proxy_for(&cluster);
    let mut clients = sessions(&proxy, 4);
    // One inside a transaction block, one running a statement.
    let msgs = clients[1].simple("begin; select 1");
    assert_eq!(msgs.last().unwrap().body, b"T");
    clients[2].send(&query(b"select pg_sleep(30)"));
    std::thread::sleep(Duration::from_millis(200));

    cluster.stop(StopMode::Fast).unwrap();
    for (i, msgs) in all_told_and_closed(&mut clients, "fast shutdown")
        .iter()
        .enumerate()
    {
        let e = msgs.last().unwrap();
        assert_eq!(e.code().as_deref(), Some("57P01"), "session {i}: {e:?}");
        let message = e.field(b'M').unwrap();
        assert!(
            message.contains("administrator command"),
            "PostgreSQL's own: {e:?}"
        );
    }
    assert_eq!(proxy.proxy.metrics.upstream_lost.load(Relaxed), 0);

    // While the server is down, new clients get 08001 from the proxy.
    let mut w = Wire::connect(proxy.addr);
    let mut msgs = w.startup(&[("user", "postgres"), ("database", "postgres")]);
    msgs.extend(w.closed_within(WITHIN));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].code().as_deref(), Some("08001"), "{msgs:?}");

    restart(&mut cluster);
    let mut again = sessions(&proxy, 3);
    for w in &mut again {
        assert_eq!(w.values("select 'after restart'"), ["after restart"]);
    }
    // The ended sessions are counted out (their tasks end just after the
    // close the clients saw).
    let deadline = Instant::now() + WITHIN;
    while proxy.proxy.metrics.sessions_active.load(Relaxed) != 3 {
        assert!(
            Instant::now() < deadline,
            "sessions_active is {}, want 3",
            proxy.proxy.metrics.sessions_active.load(Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy_panics::assert_none();
}

#[test]
fn crashed_backend_and_killed_postmaster() {
    let mut cluster = cluster();
    let proxy = proxy_for(&cluster);

    // A backend killed outright says nothing: the proxy tells its client
    // (08006). PostgreSQL then resets every other session (a WARNING, and
    // the backend exits), and those clients are told as well.
    let mut clients = sessions(&proxy, 3);
    let victim = clients[0].pid;
    let status = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let told = all_told_and_closed(&mut clients, "crashed backend");
    assert_eq!(
        tags(&told[0]),
        "E",
        "the killed backend's client: {:?}",
        told[0]
    );
    assert_eq!(told[0][0].code().as_deref(), Some("08006"), "{:?}", told[0]);
    for msgs in &told[1..] {
        // PostgreSQL's WARNING 57P02 is best effort (a backend signalled at
        // the wrong moment dies without it); the proxy's FATAL always comes.
        match tags(msgs).as_str() {
            "NE" => assert_eq!(
                msgs[0].code().as_deref(),
                Some("57P02"),
                "PostgreSQL's warning"
            ),
            "E" => {}
            other => panic!("unexpected messages {other}: {msgs:?}"),
        }
        assert_eq!(
            msgs.last().unwrap().code().as_deref(),
            Some("08006"),
            "{msgs:?}"
        );
    }
    assert!(proxy.proxy.metrics.upstream_lost.load(Relaxed) >= 1);
    // The postmaster recovers by itself.
    wait_until_serving(&proxy);

    // The postmaster killed: its backends notice and end; every client
    // gets an error and the close.
    let mut clients = sessions(&proxy, 3);
    clients[1].send(&query(b"select pg_sleep(30)"));
    std::thread::sleep(Duration::from_millis(200));
    cluster.stop(StopMode::Kill).unwrap();
    for (i, msgs) in all_told_and_closed(&mut clients, "killed postmaster")
        .iter()
        .enumerate()
    {
        let e = msgs.last().unwrap();
        let code = e.code().unwrap_or_default();
        assert!(
            ["08006", "57P01", "57P02"].contains(&code.as_str()),
            "session {i}: {e:?}"
        );
    }
    restart(&mut cluster);
    wait_until_serving(&proxy);
    let mut again = sessions(&proxy, 2);
    assert_eq!(again[1].values("select 'fine'"), ["fine"]);
    proxy_panics::assert_none();
}
