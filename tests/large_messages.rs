//! Messages of every size up to `max_message_size` pass, in both protocols
//! and both directions, in and out of transaction blocks, under the shipped
//! policy (so every statement is classified): sizes on each side of the
//! proxy's buffer boundaries (8 KiB reads, the 256 KiB high-water mark,
//! 1 MiB and up). A large statement being classified does not stall a
//! session on another connection for long.

mod common;

use std::time::{Duration, Instant};

use common::lab::{shipped_proxy, Rejecter, DB};
use common::rawpg::{self, Wire};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const SIZES: &[usize] = &[
    8 * KIB - 40,
    8 * KIB + 1,
    64 * KIB,
    256 * KIB - 30,
    256 * KIB + 1,
    MIB,
    2 * MIB,
    5 * MIB,
    16 * MIB,
    63 * MIB,
];

/// A tokio-postgres client through `proxy` whose every call must end
/// within `limit`.
async fn within<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_and_results_of_every_size_pass() {
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let via = proxy.connect("postgres", DB).await;
    let limit = Duration::from_secs(60);
    for &n in SIZES {
        let text = "x".repeat(n);
        let label = |how: &str| format!("{how}, {n} bytes");
        // Simple protocol: the statement itself is large.
        let sql = format!("SELECT length('{text}')");
        let rows = within(limit, &label("simple query"), via.simple_query(&sql))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", label("simple query")));
        let got = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(got, Some(n.to_string()), "{}", label("simple query"));
        // In a transaction block.
        let block = format!("BEGIN; {sql}; COMMIT");
        within(limit, &label("in a block"), via.simple_query(&block))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", label("in a block")));
        // Extended protocol: a large Parse.
        let row = within(limit, &label("large Parse"), via.query_one(&sql, &[]))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", label("large Parse")));
        assert_eq!(row.get::<_, i32>(0) as usize, n);
        // A large bound parameter: the Bind is the large message.
        let row = within(
            limit,
            &label("large Bind"),
            via.query_one("SELECT length($1::text)", &[&text]),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", label("large Bind")));
        assert_eq!(row.get::<_, i32>(0) as usize, n);
        // The other direction: a large DataRow.
        let row = within(
            limit,
            &label("large result"),
            via.query_one("SELECT repeat('y', $1)", &[&(n as i32)]),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", label("large result")));
        assert_eq!(row.get::<_, String>(0).len(), n);
    }
    assert!(reviewer.held.lock().unwrap().is_empty(), "nothing is held");
}

/// While one session sends a 63 MiB statement, a session on the same
/// session thread keeps getting answers. Both clients are raw sockets on
/// threads of their own, so only the proxy's time is measured.
#[test]
fn a_large_statement_does_not_stall_other_sessions() {
    // Two session threads, sessions handed out in turn: the first and the
    // third connection share one.
    let proxy = common::approval::proxy_with(|c| {
        c.workers = 2;
        c.shutdown_timeout = Duration::from_secs(2);
    });
    let mut big = Wire::open(proxy.addr, "postgres", DB);
    let _other_thread = Wire::open(proxy.addr, "postgres", DB);
    let mut small = Wire::open(proxy.addr, "postgres", DB);
    let n = 63 * MIB;
    let sql = format!("SELECT length('{}')", "x".repeat(n));
    let started = Instant::now();
    let sender = std::thread::spawn(move || big.values(&sql));
    let mut worst = Duration::ZERO;
    let mut answered = 0;
    while !sender.is_finished() {
        let t = Instant::now();
        assert_eq!(small.values("SELECT 1"), ["1"]);
        worst = worst.max(t.elapsed());
        answered += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sender.join().unwrap(), [n.to_string()]);
    eprintln!(
        "{answered} reads beside a 63 MiB statement ({:?}), the slowest {worst:?}",
        started.elapsed()
    );
    assert!(
        worst < Duration::from_millis(250),
        "a read beside a 63 MiB statement took {worst:?}"
    );
}

/// A large message with small ones behind it in the same write: the proxy
/// stops taking client messages while its buffer to the server is past the
/// high-water mark, and must take the rest once that buffer drains, with
/// nothing more arriving from the client (who waits for the answer). A
/// Bind, a Parse and a CopyData each lead the batch, on every run.
#[test]
fn messages_behind_a_large_one_are_forwarded() {
    // Everything allowed (the COPY writes), every statement still classified.
    let proxy = common::approval::proxy_with_rules(
        r#"
[[rule]]
name = "all"
action = "allow"
"#,
    );
    let mut wire = Wire::open(proxy.addr, "postgres", DB);
    let deadline = Duration::from_secs(30);
    let answered = |wire: &mut Wire, what: &str| {
        let t = Instant::now();
        let msgs = wire.until(b'Z', 1);
        assert!(t.elapsed() < deadline, "{what}: {:?}", t.elapsed());
        assert!(
            rawpg::first_error(&msgs).is_none(),
            "{what}: {}",
            rawpg::tags(&msgs)
        );
        msgs
    };
    wire.simple("CREATE TEMP TABLE sink (t text)");
    for &n in &[256 * KIB + 1, MIB, 2 * MIB, 5 * MIB] {
        for round in 0..3 {
            let what = format!("Bind of {n} bytes, round {round}");
            let mut batch = rawpg::parse(b"", b"SELECT length($1::text)", &[25]);
            batch.extend(rawpg::bind(b"", b"", &[Some(vec![b'x'; n])], 0));
            batch.extend(rawpg::execute(b"", 0));
            batch.extend(rawpg::sync());
            wire.send(&batch);
            let msgs = answered(&mut wire, &what);
            let row = msgs.iter().find(|m| m.tag == b'D').expect(&what);
            assert_eq!(
                row.columns()[0].as_deref(),
                Some(n.to_string().as_bytes()),
                "{what}"
            );

            let what = format!("Parse of {n} bytes, round {round}");
            let sql = format!("SELECT length('{}')", "x".repeat(n));
            let mut batch = rawpg::parse(b"", sql.as_bytes(), &[]);
            batch.extend(rawpg::bind(b"", b"", &[], 0));
            batch.extend(rawpg::execute(b"", 0));
            batch.extend(rawpg::sync());
            wire.send(&batch);
            answered(&mut wire, &what);

            let what = format!("CopyData of {n} bytes, round {round}");
            wire.send(&rawpg::query(b"COPY sink FROM STDIN"));
            let msgs = wire.until(b'G', 1);
            assert!(
                rawpg::first_error(&msgs).is_none(),
                "{what}: {}",
                rawpg::tags(&msgs)
            );
            let mut line = vec![b'y'; n];
            line.push(b'\n');
            let mut batch = rawpg::copy_data(&line);
            batch.extend(rawpg::copy_done());
            wire.send(&batch);
            answered(&mut wire, &what);
        }
    }
    assert_eq!(
        wire.values("SELECT count(*) FROM sink"),
        ["12"],
        "every COPY arrived"
    );
}
