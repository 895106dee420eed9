//! Client compatibility: tokio-postgres through the real proxy against the
//! real PostgreSQL, for the query protocols: simple and extended query,
//! binary parameters, pipelining, portals, errors and COPY. Session-level
//! features are in `tokio_postgres_session.rs`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use futures_util::{pin_mut, SinkExt, TryStreamExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// The proxy, with a short shutdown grace so that a failed test holding a
/// transaction open does not keep the suite waiting.
fn proxy() -> TestProxy {
    TestProxy::with_config(|c| c.shutdown_timeout = Duration::from_secs(2))
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// Rows and command tags of a simple-query result, in order.
fn summarize(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(format!(
                "row {}",
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|")
            )),
            SimpleQueryMessage::CommandComplete(n) => Some(format!("complete {n}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_query_multi_statement_strings() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let t = unique("simple");
    let got = client
        .simple_query(&format!(
            "create table {t} (a int primary key, b text);
             insert into {t} values (1, 'one'), (2, NULL), (3, 'three');
             select a, b from {t} order by a;
             update {t} set b = 'two' where a = 2;
             select b from {t} where a = 2"
        ))
        .await
        .unwrap();
    assert_eq!(
        summarize(&got),
        [
            "complete 0",
            "complete 3",
            "row 1|one",
            "row 2|NULL",
            "row 3|three",
            "complete 3",
            "complete 1",
            "row two",
            "complete 1",
        ]
    );

    // A failing statement aborts the whole implicit transaction of the
    // message: the insert before it is undone, the one after never runs.
    let e = client
        .simple_query(&format!(
            "insert into {t} values (10, 'x'); select 1/0; insert into {t} values (11, 'y')"
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::DIVISION_BY_ZERO), "{e}");
    let got = client
        .simple_query(&format!("select count(*) from {t}"))
        .await
        .unwrap();
    assert_eq!(summarize(&got), ["row 3", "complete 1"]);
    client
        .batch_execute(&format!("drop table {t}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn extended_query_named_and_unnamed_statements() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let t = unique("ext");
    client
        .batch_execute(&format!(
            "create table {t} (id int primary key, label text)"
        ))
        .await
        .unwrap();

    let insert = client
        .prepare(&format!("insert into {t} (id, label) values ($1, $2)"))
        .await
        .unwrap();
    let lookup = client
        .prepare(&format!("select label, id * 2 from {t} where id = $1"))
        .await
        .unwrap();
    assert_eq!(insert.params(), &[Type::INT4, Type::TEXT]);
    assert_eq!(lookup.columns()[0].type_(), &Type::TEXT);
    for i in 0..100i32 {
        let n = client
            .execute(&insert, &[&i, &format!("label {i}")])
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    for i in (0..100i32).rev() {
        // Unnamed statements (Parse with an empty name, one round trip)
        // between uses of the named one must not disturb it.
        let row = client
            .query_typed_one(
                "select $1::text || '-' || $2::int4",
                &[(&"u", Type::TEXT), (&i, Type::INT4)],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), format!("u-{i}"));
        let row = client.query_one(&lookup, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), format!("label {i}"));
        assert_eq!(row.get::<_, i32>(1), i * 2);
    }
    let rows = client.query(&lookup, &[&1000i32]).await.unwrap();
    assert!(rows.is_empty());
    let total: i64 = client
        .query_one(&format!("select sum(id)::int8 from {t}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, (0..100).sum::<i64>());
    client
        .batch_execute(&format!("drop table {t}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn binary_parameters_and_nulls_round_trip() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let int4 = -2_000_000_123i32;
    let int8 = i64::MAX - 7;
    let float8 = -1234.5678e-9f64;
    let text = "héllo 'wörld' \\ \"🚀\"";
    let bytea: Vec<u8> = (0..=255u8).collect();
    let ts: DateTime<Utc> = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap()
        + chrono::Duration::microseconds(123_456);
    let numeric = "12345678901234567890.000123";

    let row = client
        .query_one(
            "select $1::int4, $2::int8, $3::float8, $4::text, $5::bytea, $6::bool,
                    $7::timestamptz, $8::text::numeric::text,
                    $1::int4 + 1, $2::int8 / 7, $3::float8 * 2, length($4::text),
                    octet_length($5::bytea), get_byte($5::bytea, 200), not $6::bool,
                    $7::timestamptz = '2024-02-29 23:59:58.123456+00',
                    ($8::text::numeric * 2)::text",
            &[&int4, &int8, &float8, &text, &bytea, &true, &ts, &numeric],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), int4);
    assert_eq!(row.get::<_, i64>(1), int8);
    assert_eq!(row.get::<_, f64>(2), float8);
    assert_eq!(row.get::<_, &str>(3), text);
    assert_eq!(row.get::<_, Vec<u8>>(4), bytea);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, DateTime<Utc>>(6), ts);
    assert_eq!(row.get::<_, &str>(7), numeric);
    assert_eq!(row.get::<_, i32>(8), int4 + 1);
    assert_eq!(row.get::<_, i64>(9), int8 / 7);
    assert_eq!(row.get::<_, f64>(10), float8 * 2.0);
    assert_eq!(row.get::<_, i32>(11), text.chars().count() as i32);
    assert_eq!(row.get::<_, i32>(12), 256);
    assert_eq!(row.get::<_, i32>(13), 200);
    assert!(!row.get::<_, bool>(14));
    assert!(row.get::<_, bool>(15), "server saw a different timestamp");
    assert_eq!(row.get::<_, &str>(16), "24691357802469135780.000246");

    // NULLs as parameters and in results, through a table.
    let t = unique("nulls");
    client
        .batch_execute(&format!(
            "create table {t} (k int, i int4, b int8, f float8, s text, y bytea, o bool, ts timestamptz)"
        ))
        .await
        .unwrap();
    let none_i4: Option<i32> = None;
    let none_i8: Option<i64> = None;
    let none_f: Option<f64> = None;
    let none_s: Option<&str> = None;
    let none_y: Option<Vec<u8>> = None;
    let none_o: Option<bool> = None;
    let none_ts: Option<DateTime<Utc>> = None;
    client
        .execute(
            &format!("insert into {t} values ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[
                &1i32, &none_i4, &none_i8, &none_f, &none_s, &none_y, &none_o, &none_ts,
            ],
        )
        .await
        .unwrap();
    client
        .execute(
            &format!("insert into {t} values ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[
                &2i32,
                &Some(5i32),
                &Some(6i64),
                &Some(0.5f64),
                &Some(""),
                &Some(Vec::<u8>::new()),
                &Some(false),
                &Some(ts),
            ],
        )
        .await
        .unwrap();
    let rows = client
        .query(
            &format!(
                "select i, b, f, s, y, o, ts, num_nulls(i, b, f, s, y, o, ts) from {t} order by k"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, Option<i32>>(0), None);
    assert_eq!(rows[0].get::<_, Option<i64>>(1), None);
    assert_eq!(rows[0].get::<_, Option<f64>>(2), None);
    assert_eq!(rows[0].get::<_, Option<String>>(3), None);
    assert_eq!(rows[0].get::<_, Option<Vec<u8>>>(4), None);
    assert_eq!(rows[0].get::<_, Option<bool>>(5), None);
    assert_eq!(rows[0].get::<_, Option<DateTime<Utc>>>(6), None);
    assert_eq!(rows[0].get::<_, i32>(7), 7);
    assert_eq!(rows[1].get::<_, Option<i32>>(0), Some(5));
    assert_eq!(rows[1].get::<_, Option<String>>(3).as_deref(), Some(""));
    assert_eq!(rows[1].get::<_, Option<Vec<u8>>>(4), Some(vec![]));
    assert_eq!(rows[1].get::<_, Option<DateTime<Utc>>>(6), Some(ts));
    assert_eq!(rows[1].get::<_, i32>(7), 0);
    client
        .batch_execute(&format!("drop table {t}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn pipelined_queries_on_one_connection() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let double = client.prepare("select $1::int4 * 2").await.unwrap();

    // All fifty Bind/Execute/Sync groups go out before the first answer is
    // read: tokio-postgres pipelines requests of concurrent futures.
    let queries = (0..50i32).map(|i| {
        let (client, double) = (&client, &double);
        async move {
            let row = client.query_one(double, &[&i]).await?;
            Ok::<_, tokio_postgres::Error>(row.get::<_, i32>(0))
        }
    });
    let got = futures_util::future::try_join_all(queries).await.unwrap();
    assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());

    // Different kinds of request in one pipeline, answered in order.
    let (simple, typed, prepared, one) = futures_util::try_join!(
        client.simple_query("select 'a'; select 'b'"),
        client.query_typed("select $1::text", &[(&"typed", Type::TEXT)]),
        client.query(&double, &[&21i32]),
        client.query_one("select repeat('z', 100000)", &[]),
    )
    .unwrap();
    assert_eq!(
        summarize(&simple),
        ["row a", "complete 1", "row b", "complete 1"]
    );
    assert_eq!(typed[0].get::<_, &str>(0), "typed");
    assert_eq!(prepared[0].get::<_, i32>(0), 42);
    assert_eq!(one.get::<_, &str>(0).len(), 100_000);

    // Results far beyond the proxy's buffers while requests keep coming:
    // backpressure must not turn into a deadlock or lose bytes.
    let big = client
        .prepare("select repeat(chr(65 + $1::int4 % 26), 262144)")
        .await
        .unwrap();
    let queries = (0..64i32).map(|i| {
        let (client, big) = (&client, &big);
        async move { client.query_one(big, &[&i]).await }
    });
    let rows = futures_util::future::try_join_all(queries).await.unwrap();
    for (i, row) in rows.iter().enumerate() {
        let s: &str = row.get(0);
        let want = char::from(b'A' + (i % 26) as u8);
        assert!(s.len() == 262144 && s.chars().all(|c| c == want), "row {i}");
    }

    // An error in the middle of a pipeline fails only its own request: the
    // server discards up to that request's Sync and goes on.
    let (a, b, c) = futures_util::join!(
        client.query_one(&double, &[&1i32]),
        client.query_one("select 1/0", &[]),
        client.query_one(&double, &[&3i32]),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 2);
    assert_eq!(code(&b.unwrap_err()), Some(&SqlState::DIVISION_BY_ZERO));
    assert_eq!(c.unwrap().get::<_, i32>(0), 6);
}

#[tokio::test]
async fn portals_fetch_in_chunks() {
    let proxy = proxy();
    let mut client = proxy.connect("postgres", "airlock_test").await;
    let tx = client.transaction().await.unwrap();
    let series = tx
        .prepare("select g, repeat('x', g % 50) from generate_series(1, $1::int4) g")
        .await
        .unwrap();
    let big = tx.bind(&series, &[&1000i32]).await.unwrap();
    let small = tx
        .bind("select g * 10 from generate_series(1, 250) g", &[])
        .await
        .unwrap();
    // Two portals open at once, fetched alternately.
    let (mut seen_big, mut seen_small) = (Vec::new(), Vec::new());
    let (mut sizes_big, mut sizes_small) = (Vec::new(), Vec::new());
    loop {
        let b = tx.query_portal(&big, 100).await.unwrap();
        let s = tx.query_portal(&small, 100).await.unwrap();
        if b.is_empty() && s.is_empty() {
            break;
        }
        sizes_big.push(b.len());
        sizes_small.push(s.len());
        for r in &b {
            let g: i32 = r.get(0);
            assert_eq!(r.get::<_, &str>(1).len() as i32, g % 50);
            seen_big.push(g);
        }
        seen_small.extend(s.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(sizes_big, [100; 10]);
    assert_eq!(sizes_small, [100, 100, 50, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(seen_big, (1..=1000).collect::<Vec<_>>());
    assert_eq!(seen_small, (1..=250).map(|g| g * 10).collect::<Vec<_>>());
    tx.commit().await.unwrap();
    let row = client.query_one("select 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn errors_keep_the_connection_usable() {
    let proxy = proxy();
    let mut client = proxy.connect("postgres", "airlock_test").await;

    let e = client.query("select 1/0", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::DIVISION_BY_ZERO), "{e}");
    let e = client.prepare("selec 1").await.unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::SYNTAX_ERROR), "{e}");
    let e = client
        .simple_query("select * from no_such_table_anywhere")
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::UNDEFINED_TABLE), "{e}");
    let row = client.query_one("select 2", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);

    // In a transaction block an error fails the transaction until ROLLBACK.
    let t = unique("txerr");
    client
        .batch_execute(&format!("create table {t} (a int)"))
        .await
        .unwrap();
    client.batch_execute("begin").await.unwrap();
    client
        .execute(&format!("insert into {t} values (1)"), &[])
        .await
        .unwrap();
    let e = client.execute("select 1/0", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::DIVISION_BY_ZERO));
    let e = client.query("select 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{e}");
    let e = client.simple_query("select 1").await.unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{e}");
    client.batch_execute("rollback").await.unwrap();
    let n: i64 = client
        .query_one(&format!("select count(*) from {t}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the rolled-back insert is gone");

    // The same through the Transaction API; the good statement after the
    // rollback commits.
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("insert into {t} values (2)"), &[])
        .await
        .unwrap();
    let e = tx
        .execute(&format!("insert into {t} values ('x')"), &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        Some(&SqlState::INVALID_TEXT_REPRESENTATION),
        "{e}"
    );
    tx.rollback().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("insert into {t} values (3)"), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = client
        .query(&format!("select a from {t}"), &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [3]
    );
    client
        .batch_execute(&format!("drop table {t}"))
        .await
        .unwrap();
}

/// COPY text-format data for `rows` rows, with escapes, NULLs, non-ASCII
/// text and bytea, already in the form COPY TO writes it.
fn copy_data(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rows {
        let label = if i % 7 == 3 {
            "\\N".to_string()
        } else {
            format!(
                "row {i}\\ttab \\\\ back\\nslash ünïcödé 🚀 {}",
                "w".repeat(i % 40)
            )
        };
        let bytes: String = (0..(i % 5))
            .map(|k| format!("{:02x}", (i * 31 + k) % 256))
            .collect();
        out.extend_from_slice(format!("{i}\t{label}\t\\\\x{bytes}\n").as_bytes());
    }
    out
}

#[tokio::test]
async fn copy_in_and_copy_out_round_trip() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let t = unique("copy");
    client
        .batch_execute(&format!(
            "create table {t} (id int primary key, label text, data bytea)"
        ))
        .await
        .unwrap();
    let data = copy_data(5000);
    assert!(data.len() > 300_000, "big enough to cross buffer limits");

    let sink = client
        .copy_in(&format!("COPY {t} (id, label, data) FROM STDIN"))
        .await
        .unwrap();
    pin_mut!(sink);
    // Small chunks that split rows anywhere, then one big one.
    let mut at = 0;
    for size in [1usize, 2, 3, 700, 4096, 777].iter().cycle().take(60) {
        sink.send(Bytes::copy_from_slice(&data[at..at + size]))
            .await
            .unwrap();
        at += size;
    }
    sink.send(Bytes::copy_from_slice(&data[at..]))
        .await
        .unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 5000);

    let row = client
        .query_one(
            &format!("select count(*), count(label), sum(octet_length(data))::int8 from {t}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5000);
    assert_eq!(
        row.get::<_, i64>(1),
        5000 - (0..5000).filter(|i| i % 7 == 3).count() as i64
    );
    assert_eq!(row.get::<_, i64>(2), (0..5000).map(|i| i % 5).sum::<i64>());

    let stream = client
        .copy_out(&format!(
            "COPY (select id, label, data from {t} order by id) TO STDOUT"
        ))
        .await
        .unwrap();
    pin_mut!(stream);
    let mut back = Vec::new();
    while let Some(chunk) = stream.try_next().await.unwrap() {
        back.extend_from_slice(&chunk);
    }
    assert!(
        back == data,
        "COPY OUT differs from what went in ({} vs {} bytes)",
        back.len(),
        data.len()
    );

    // A COPY that fails on bad data leaves nothing behind and the session
    // usable.
    let sink = client
        .copy_in(&format!("COPY {t} (id, label) FROM STDIN"))
        .await
        .unwrap();
    pin_mut!(sink);
    sink.send(Bytes::from_static(b"90001\tfine\nnot-a-number\tbad\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(
        code(&e),
        Some(&SqlState::INVALID_TEXT_REPRESENTATION),
        "{e}"
    );
    let n: i64 = client
        .query_one(&format!("select count(*) from {t}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5000);
    client
        .batch_execute(&format!("drop table {t}"))
        .await
        .unwrap();
}
