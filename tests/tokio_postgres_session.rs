//! Client compatibility: tokio-postgres through the real proxy against the
//! real PostgreSQL, for what happens beside queries: LISTEN/NOTIFY, notices,
//! ParameterStatus, cancel and its keys, and authentication.

mod common;
mod raw_session;

use std::time::{Duration, Instant};

use common::*;
use tokio::sync::{mpsc, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// How long a test waits for something that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(5);

/// The proxy, with a short shutdown grace so that a failed test holding a
/// transaction open does not keep the suite waiting.
fn proxy() -> TestProxy {
    TestProxy::with_config(|c| c.shutdown_timeout = Duration::from_secs(2))
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// A client whose connection task reports what tokio-postgres does not hand
/// to queries: asynchronous messages (notices, notifications) and the
/// session's `application_name` as last reported by ParameterStatus.
struct Observed {
    client: Client,
    messages: mpsc::UnboundedReceiver<AsyncMessage>,
    application_name: watch::Receiver<Option<String>>,
}

async fn connect_observed(conninfo: &str) -> Observed {
    let (client, mut connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    let (tx, messages) = mpsc::unbounded_channel();
    let name =
        |c: &tokio_postgres::Connection<_, _>| c.parameter("application_name").map(str::to_owned);
    let (name_tx, application_name) = watch::channel(name(&connection));
    tokio::spawn(async move {
        loop {
            let next = std::future::poll_fn(|cx| {
                let r = connection.poll_message(cx);
                let now = name(&connection);
                name_tx.send_if_modified(|v| {
                    let changed = *v != now;
                    *v = now;
                    changed
                });
                r
            })
            .await;
            match next {
                Some(Ok(m)) => {
                    let _ = tx.send(m);
                }
                _ => break,
            }
        }
    });
    Observed {
        client,
        messages,
        application_name,
    }
}

/// The next asynchronous message, waiting at most [`PROMPTLY`].
async fn next_message(rx: &mut mpsc::UnboundedReceiver<AsyncMessage>) -> AsyncMessage {
    tokio::time::timeout(PROMPTLY, rx.recv())
        .await
        .expect("no asynchronous message arrived in time")
        .expect("connection closed")
}

#[tokio::test]
async fn listen_notify_across_two_connections() {
    let proxy = proxy();
    let mut listener = connect_observed(&proxy.conninfo("postgres", "airlock_test")).await;
    let notifier = proxy.connect("postgres", "airlock_test").await;
    let channel = unique("chan");
    listener
        .client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    let notifier_pid: i32 = notifier
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    // A rolled-back NOTIFY is never delivered; committed ones arrive in
    // order, while the listener sits idle.
    notifier
        .batch_execute(&format!("begin; notify {channel}, 'rolled back'; rollback"))
        .await
        .unwrap();
    notifier
        .execute("select pg_notify($1, $2)", &[&channel, &"first ✓"])
        .await
        .unwrap();
    notifier
        .batch_execute(&format!(
            "begin; notify {channel}, 'second'; notify {channel}; commit"
        ))
        .await
        .unwrap();
    for want in ["first ✓", "second", ""] {
        match next_message(&mut listener.messages).await {
            AsyncMessage::Notification(n) => {
                assert_eq!(n.channel(), channel);
                assert_eq!(n.payload(), want);
                assert_eq!(n.process_id(), notifier_pid, "pid of the notifying backend");
            }
            other => panic!("expected a notification, got {other:?}"),
        }
    }
    listener.client.batch_execute("UNLISTEN *").await.unwrap();
    notifier
        .batch_execute(&format!("notify {channel}, 'after unlisten'"))
        .await
        .unwrap();
    listener.client.batch_execute("select 1").await.unwrap();
    assert!(
        listener.messages.try_recv().is_err(),
        "nothing after UNLISTEN"
    );
}

#[tokio::test]
async fn notices_reach_the_client() {
    let proxy = proxy();
    let mut c = connect_observed(&proxy.conninfo("postgres", "airlock_test")).await;
    c.client
        .batch_execute(
            "DO $$ BEGIN
                 RAISE NOTICE 'airlock notice %', 42;
                 RAISE WARNING 'airlock warning' USING ERRCODE = '01000', HINT = 'a hint';
             END $$",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        match next_message(&mut c.messages).await {
            AsyncMessage::Notice(n) => got.push((
                n.severity().to_string(),
                n.code().code().to_string(),
                n.message().to_string(),
                n.hint().map(str::to_string),
            )),
            other => panic!("expected a notice, got {other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            (
                "NOTICE".into(),
                "00000".into(),
                "airlock notice 42".into(),
                None
            ),
            (
                "WARNING".into(),
                "01000".into(),
                "airlock warning".into(),
                Some("a hint".into())
            ),
        ]
    );
    let row = c.client.query_one("select 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn parameter_status_is_reported() {
    let proxy = proxy();
    let conninfo = format!(
        "{} application_name=airlock-start",
        proxy.conninfo("postgres", "airlock_test")
    );
    let mut c = connect_observed(&conninfo).await;
    assert_eq!(
        c.application_name.borrow().as_deref(),
        Some("airlock-start"),
        "startup ParameterStatus"
    );
    c.client
        .batch_execute("SET application_name = 'renamed through airlock'")
        .await
        .unwrap();
    tokio::time::timeout(
        PROMPTLY,
        c.application_name
            .wait_for(|v| v.as_deref() == Some("renamed through airlock")),
    )
    .await
    .expect("no ParameterStatus for application_name")
    .unwrap();
    let row = c
        .client
        .query_one("select current_setting('application_name')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "renamed through airlock");
}

#[tokio::test]
async fn cancel_ends_a_running_query() {
    let proxy = proxy();
    let client = proxy.connect("postgres", "airlock_test").await;
    let pid: i32 = client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let token = client.cancel_token();
    let sql = "select pg_sleep(30)";
    let started = Instant::now();
    let (result, cancelled) = tokio::join!(client.query(sql, &[]), async {
        until_running(Some(pid), sql).await;
        token.cancel_query(NoTls).await
    });
    cancelled.expect("send cancel");
    let e = result.expect_err("the sleep was not cancelled");
    assert_eq!(code(&e), Some(&SqlState::QUERY_CANCELED), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let row = client.query_one("select 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7, "the session survives a cancel");
}

/// The process id in BackendKeyData is the upstream's own; the secret key
/// is the proxy's, and a CancelRequest needs the right one to cancel.
#[test]
fn backend_key_data_and_cancel_keys() {
    let proxy = proxy();
    let mut conn = raw_session::RawConn::connect(proxy.port(), "postgres", "airlock_test");
    let rows = conn.query("select pg_backend_pid()").unwrap();
    assert_eq!(
        rows,
        [[Some(conn.process_id.to_string())]],
        "BackendKeyData pid"
    );

    // Wrong keys, sent while a statement runs, cancel nothing: not through
    // the proxy with a wrong secret or pid, and not directly at the server
    // with the secret the proxy handed out (that one is the proxy's own).
    conn.send_query("select pg_sleep(5)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(until_running(
        Some(conn.process_id as i32),
        "select pg_sleep(5)",
    ));
    let (pid, secret) = (conn.process_id, conn.secret_key);
    raw_session::send_cancel(proxy.port(), pid, secret ^ 0x0101_0101);
    raw_session::send_cancel(proxy.port(), pid, secret.wrapping_add(1));
    raw_session::send_cancel(proxy.port(), pid.wrapping_add(1), secret);
    raw_session::send_cancel(pg().port, pid, secret);
    let messages = conn.read_until_ready();
    let errors: Vec<_> = messages
        .iter()
        .filter(|(t, _)| *t == b'E')
        .map(|(_, b)| raw_session::error_fields(b))
        .collect();
    assert!(
        errors.is_empty(),
        "a wrong key cancelled the query: {errors:?}"
    );
    assert!(messages
        .iter()
        .any(|(t, b)| *t == b'C' && b.starts_with(b"SELECT 1")));

    // The right keys, through the proxy, do.
    conn.send_query("select pg_sleep(30)");
    runtime.block_on(until_running(
        Some(conn.process_id as i32),
        "select pg_sleep(30)",
    ));
    let started = Instant::now();
    raw_session::send_cancel(proxy.port(), pid, secret);
    let messages = conn.read_until_ready();
    let error = messages
        .iter()
        .find(|(t, _)| *t == b'E')
        .map(|(_, b)| raw_session::error_fields(b))
        .expect("the right keys did not cancel");
    assert_eq!(raw_session::field(&error, b'C'), Some("57014"), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(conn.query("select 1").unwrap(), [[Some("1".to_string())]]);
}

async fn try_connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[tokio::test]
async fn password_authentication_methods() {
    let proxy = proxy();
    for user in ["md5_user", "scram_user", "password_user"] {
        let via_proxy =
            |pw: &str| format!("{} password={pw}", proxy.conninfo(user, "airlock_test"));
        let client = try_connect(&via_proxy(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{user} with the right password: {e}"));
        let row = client
            .query_one("select current_user::text, $1::int4 + 1", &[&1i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, &str>(0), user);
        assert_eq!(row.get::<_, i32>(1), 2);

        let e = match try_connect(&via_proxy("wrong-password")).await {
            Ok(_) => panic!("{user} got in with a wrong password"),
            Err(e) => e,
        };
        let db = e
            .as_db_error()
            .unwrap_or_else(|| panic!("{user}: not a server error: {e:?}"));
        assert_eq!(db.code(), &SqlState::INVALID_PASSWORD, "{user}: {db}");
        assert_eq!(db.severity(), "FATAL");
        assert_eq!(
            db.message(),
            format!("password authentication failed for user \"{user}\"")
        );
        // Exactly what PostgreSQL tells a client connecting directly.
        let direct = format!(
            "{} password=wrong-password",
            direct_conninfo(user, "airlock_test")
        );
        let Err(de) = try_connect(&direct).await else {
            panic!("{user} got in directly with a wrong password")
        };
        let de = de.as_db_error().expect("server error");
        assert_eq!((de.code(), de.message()), (db.code(), db.message()));
    }
}
