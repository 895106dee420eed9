//! The approval store in PostgreSQL: the core flows (hold, approve, reject,
//! re-run grant) with each proxy's state in a fresh database of the shared
//! cluster, and two proxies sharing one store, where an approval recorded
//! through one wakes the statement held on the other (LISTEN/NOTIFY).

mod common;

use std::time::{Duration, Instant};

use common::http::call;
use common::review::*;
use common::*;
use tokio_postgres::error::SqlState;

type Held = tokio::task::JoinHandle<Result<u64, tokio_postgres::Error>>;

/// Runs `sql` as `postgres` through `proxy` in a task.
async fn hold(proxy: &TestProxy, sql: String) -> Held {
    let client = proxy.connect("postgres", "airlock_test").await;
    tokio::spawn(async move { client.execute(sql.as_str(), &[]).await })
}

/// A proxy with the shipped policy whose store is `url`.
fn proxy_on(url: &str) -> TestProxy {
    let url = url.to_string();
    proxy(move |c| {
        c.store = url;
        // A failing test does not wait long for a held session to end.
        c.shutdown_timeout = Duration::from_secs(2);
    })
}

/// The database name of a store URL.
fn db_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// A column of request `id`, straight from the store's database.
fn stored(url: &str, id: &str, column: &str) -> String {
    scalar(
        db_of(url),
        &format!("select coalesce({column}::text, '') from requests where id = '{id}'"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_update_runs_after_approval() {
    let url = pg_store_url("airlock_pgstore_ok");
    let t = unique("pgs_ok");
    table(&t);
    let proxy = proxy_on(&url);
    let admin = proxy.admin;
    let held = hold(&proxy, format!("UPDATE {t} SET v = 7 WHERE id <= 3")).await;
    let needle = t.clone();
    let r = blocking(move || pending(admin, &needle)).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["requester"], "postgres");
    assert_eq!(r["database"], "airlock_test");
    assert_eq!(r["rule"], "writes");
    // The request is in the PostgreSQL store, not anywhere else.
    assert_eq!(stored(&url, &id, "status"), "pending");
    assert_eq!(total(&t), 0, "nothing ran before the approval");

    let i = id.clone();
    let (status, body) = blocking(move || approve(admin, ALICE, &i)).await;
    assert_eq!(status, 200, "{body}");
    let rows = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the held statement finishes")
        .unwrap()
        .unwrap();
    assert_eq!(rows, 3, "the real result reaches the client");
    assert_eq!(total(&t), 21);
    let i = id.clone();
    let r = blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = request(admin, &i);
            if r["rows_affected"] == 3 || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    })
    .await;
    assert_eq!(r["status"], "executed", "{r}");
    assert_eq!(r["rows_affected"], 3, "{r}");
    assert_eq!(stored(&url, &id, "status"), "executed");
    assert_eq!(stored(&url, &id, "rows_affected"), "3");
    assert_eq!(
        scalar(
            db_of(&url),
            &format!("select reviewer || ':' || decision from reviews where request_id = '{id}'")
        ),
        "alice:approve"
    );
    let i = id.clone();
    let trail = blocking(move || {
        // The session and the API queue these; either may come first.
        wait_audit(admin, &i, "execute");
        wait_audit(admin, &i, "approve")
    })
    .await;
    let approval = trail.iter().find(|e| e["event"] == "approve").unwrap();
    assert_eq!(approval["actor"], "alice", "{trail:?}");
    assert_ne!(
        scalar(
            db_of(&url),
            &format!("select count(*) from audit where request_id = '{id}'")
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_statement_never_runs_and_the_session_goes_on() {
    let url = pg_store_url("airlock_pgstore_rej");
    let t = unique("pgs_rej");
    table(&t);
    let proxy = proxy_on(&url);
    let admin = proxy.admin;
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("DELETE FROM {t} WHERE id = 1");
    let held = tokio::spawn(async move {
        let r = client.execute(sql.as_str(), &[]).await;
        (client, r)
    });
    let needle = t.clone();
    let id = blocking(move || pending(admin, &needle)["id"].as_str().unwrap().to_string()).await;
    let i = id.clone();
    let (status, body) = blocking(move || reject(admin, BOB, &i, "wrong table")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    let (client, r) = held.await.unwrap();
    let err = r.unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    assert!(db.message().contains("bob"), "{}", db.message());
    assert!(db.message().contains("wrong table"), "{}", db.message());
    let one: i32 = client.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1, "the session stays usable");
    assert_eq!(
        scalar("airlock_test", &format!("select count(*) from {t}")),
        "5"
    );
    assert_eq!(stored(&url, &id, "status"), "rejected");
    assert_eq!(stored(&url, &id, "reason"), "wrong table");
    let i = id.clone();
    blocking(move || {
        assert_error(
            "approve rejected",
            approve(admin, ALICE, &i),
            409,
            "not_pending",
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_after_a_timeout_lets_the_identical_statement_run_once() {
    let url = pg_store_url("airlock_pgstore_grant");
    let t = unique("pgs_grant");
    table(&t);
    let mut c = config();
    c.store = url.clone();
    let proxy = TestProxy::with_policy(c, Some(quick_policy("1s")));
    let admin = proxy.admin;
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id = 2");
    let err = client.execute(sql.as_str(), &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    let needle = t.clone();
    let id = blocking(move || pending(admin, &needle)["id"].as_str().unwrap().to_string()).await;
    let i = id.clone();
    let (status, body) = blocking(move || approve(admin, ALICE, &i)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(stored(&url, &id, "status"), "approved");
    assert_eq!(value(&t, 2), 0);

    assert_eq!(client.execute(sql.as_str(), &[]).await.unwrap(), 1);
    assert_eq!(value(&t, 2), 1);
    assert_eq!(stored(&url, &id, "status"), "executed");
    // Used once: the next run is a new request, held (and timing out).
    let err = client.execute(sql.as_str(), &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert_eq!(value(&t, 2), 1);
    let needle = t.clone();
    let all = blocking(move || requests_for(admin, &needle)).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["status"], "pending");
    assert_eq!(all[1]["id"], id.as_str());
}

/// The heart of sharing a store: a statement held on proxy A is approved
/// through proxy B and runs on A at once, without waiting for a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_through_another_proxy_wakes_the_held_statement() {
    let url = pg_store_url("airlock_pgstore_two");
    let t = unique("pgs_two");
    table(&t);
    let a = proxy_on(&url);
    let b = proxy_on(&url);
    let (admin_a, admin_b) = (a.admin, b.admin);
    // B's event stream hears of what A holds.
    let mut events = blocking(move || Events::open(admin_b, BOB)).await;

    let held = hold(&a, format!("UPDATE {t} SET v = 4 WHERE id = 1")).await;
    let needle = t.clone();
    let (created, events_b) = blocking(move || {
        let e = events.first_for_sql(&needle, Duration::from_secs(15));
        (e, events)
    })
    .await;
    let mut events = events_b;
    assert_eq!(created.name, "request.created", "{created:?}");
    let id = created.data["id"].as_str().unwrap().to_string();
    let needle = t.clone();
    let on_b = blocking(move || pending(admin_b, &needle)).await;
    assert_eq!(on_b["id"], id.as_str(), "B lists A's request");
    assert_eq!(value(&t, 1), 0);

    let i = id.clone();
    let (status, body) = blocking(move || approve(admin_b, ALICE, &i)).await;
    assert_eq!(status, 200, "{body}");
    let approved_at = Instant::now();
    // No proxy polls the store: only B's NOTIFY can wake A. The bound is
    // generous for a loaded machine; the wake is usually within milliseconds.
    let rows = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the statement held on A runs within 10 s of the approval on B")
        .unwrap()
        .unwrap();
    assert!(approved_at.elapsed() < Duration::from_secs(10));
    assert_eq!(rows, 1);
    assert_eq!(value(&t, 1), 4);
    let i = id.clone();
    blocking(move || {
        let r = wait_status(admin_a, &i, "executed");
        assert_eq!(r["reviews"][0]["reviewer"], "alice", "{r}");
        assert_eq!(request(admin_b, &i)["status"], "executed");
        // B heard the decision and the execution by A too.
        events.until(
            &i,
            &["request.decided", "request.executed"],
            Duration::from_secs(10),
        );
    })
    .await;

    // A rejection through B reaches A's client as promptly.
    let client = a.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = 5 WHERE id = 2");
    let held = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let needle = format!("{t} SET v = 5");
    let id = blocking(move || {
        pending(admin_b, &needle)["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;
    let (status, _) = blocking(move || reject(admin_b, BOB, &id, "not now")).await;
    assert_eq!(status, 200);
    let err = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the rejection through B reaches A within 10 s")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err}");
    assert_eq!(value(&t, 2), 0);
}

/// Two reviewers approving at once through two proxies: one decision wins,
/// the other is told it came too late, and the statement runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_approvals_through_two_proxies_run_the_statement_once() {
    let url = pg_store_url("airlock_pgstore_race");
    let t = unique("pgs_race");
    table(&t);
    let a = proxy_on(&url);
    let b = proxy_on(&url);
    let (admin_a, admin_b) = (a.admin, b.admin);
    let held = hold(&a, format!("UPDATE {t} SET v = v + 1 WHERE id = 3")).await;
    let needle = t.clone();
    let id = blocking(move || {
        pending(admin_a, &needle)["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;
    let (i1, i2) = (id.clone(), id.clone());
    let one = tokio::task::spawn_blocking(move || approve(admin_a, ALICE, &i1));
    let two = tokio::task::spawn_blocking(move || approve(admin_b, BOB, &i2));
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{one:?} {two:?}");
    let loser = if one.0 == 409 { one } else { two };
    assert_error("the later approval", loser, 409, "not_pending");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 3), 1);
    assert_eq!(
        scalar(
            db_of(&url),
            &format!("select count(*) from reviews where request_id = '{id}'")
        ),
        "1"
    );

    // Two approvals needed (no WHERE): both count, each once.
    let held = hold(&b, format!("UPDATE {t} SET v = v + 100")).await;
    let needle = format!("{t} SET v = v + 100");
    let id = blocking(move || {
        pending(admin_b, &needle)["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;
    let (i1, i2, i3) = (id.clone(), id.clone(), id.clone());
    let one = tokio::task::spawn_blocking(move || approve(admin_a, ALICE, &i1));
    let two = tokio::task::spawn_blocking(move || approve(admin_b, BOB, &i2));
    let again = tokio::task::spawn_blocking(move || approve(admin_a, ALICE, &i3));
    let (one, two, again) = (one.await.unwrap(), two.await.unwrap(), again.await.unwrap());
    // Alice twice: one of her two is refused, as already reviewed or (if
    // Bob's made it final first) as no longer pending.
    let alices = [one.0, again.0];
    assert!(
        alices.contains(&200) && alices.contains(&409),
        "{one:?} {again:?}"
    );
    assert_eq!(two.0, 200, "{two:?}");
    assert_eq!(held.await.unwrap().unwrap(), 5);
    assert_eq!(total(&t), 501);
    assert_eq!(stored(&url, &id, "status"), "executed");
}

/// Notifications sent while a proxy's LISTEN connection is down are lost
/// (PostgreSQL does not queue them for a listener that is not there). A
/// proxy that reconnects its listener must catch up on what changed
/// meanwhile, or a statement it holds never sees its approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_made_while_the_listener_was_down_still_wakes_the_statement() {
    let url = pg_store_url("airlock_pgstore_gap");
    let store_db = db_of(&url).to_string();
    let t = unique("pgs_gap");
    table(&t);
    let a = proxy_on(&url);
    let b = proxy_on(&url);
    let (admin_a, admin_b) = (a.admin, b.admin);
    let held = hold(&a, format!("UPDATE {t} SET v = 8 WHERE id = 4")).await;
    let needle = t.clone();
    let id = blocking(move || {
        pending(admin_b, &needle)["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;

    // The store's database refuses new connections, and the listeners'
    // connections are ended: they cannot come back yet. B records the
    // approval on a pooled connection; its NOTIFY finds no listener. (B's
    // pool is warmed first; if it still needs a new connection, the
    // approval fails with 503 and the attempt is repeated.)
    let allow = |on: bool| {
        stdout_ok(&psql(
            pg().port,
            "postgres",
            "postgres",
            &[
                "-qc",
                &format!("ALTER DATABASE {store_db} ALLOW_CONNECTIONS {on}"),
            ],
        ));
    };
    let listeners = |db: &str| {
        scalar(
            "postgres",
            &format!(
                "select count(*) from pg_stat_activity \
                 where datname = '{db}' and query ilike 'LISTEN%'"
            ),
        )
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let calls: Vec<_> = (0..8)
            .map(|_| {
                tokio::task::spawn_blocking(move || {
                    call(
                        admin_b,
                        "GET",
                        "/api/v1/requests?limit=500",
                        Some(BOB),
                        None,
                    )
                })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().0, 200);
        }
        allow(false);
        let ended = scalar(
            "postgres",
            &format!(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity \
                 where datname = '{store_db}' and query ilike 'LISTEN%'"
            ),
        );
        assert_eq!(ended, "2", "one listener per proxy");
        let i = id.clone();
        let (status, body) = blocking(move || approve(admin_b, ALICE, &i)).await;
        allow(true);
        if status == 200 {
            assert_eq!(body["status"], "approved");
            break;
        }
        assert_error(
            "approval without a connection",
            (status, body),
            503,
            "store_unavailable",
        );
        if stored(&url, &id, "status") == "approved" {
            break;
        }
        assert!(attempt < 3, "B's pool never had a connection to spare");
        let deadline = Instant::now() + Duration::from_secs(10);
        while listeners(&store_db) != "2" {
            assert!(Instant::now() < deadline, "the listeners did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both listeners are back within about a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(&store_db) != "2" {
        assert!(Instant::now() < deadline, "the listeners did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rows = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the statement held on A never saw the approval recorded while its listener \
                 was down (request {id} is still {} on A)",
                stored(&url, &id, "status")
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(value(&t, 4), 8);
    let _ = admin_a;
}

/// One change, one event: the proxy that makes a change publishes it to
/// its own subscribers, and must not publish it again when its own NOTIFY
/// comes back through its listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_one_event_on_every_proxy() {
    let url = pg_store_url("airlock_pgstore_once");
    let t = unique("pgs_once");
    table(&t);
    let a = proxy_on(&url);
    let b = proxy_on(&url);
    let (admin_a, admin_b) = (a.admin, b.admin);
    let mut on_a = blocking(move || Events::open(admin_a, BOB)).await;
    let mut on_b = blocking(move || Events::open(admin_b, BOB)).await;
    let held = hold(&a, format!("UPDATE {t} SET v = 2 WHERE id = 5")).await;
    let needle = t.clone();
    let id = blocking(move || {
        pending(admin_a, &needle)["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .await;
    // Nothing else happens to the request for a while: count its events.
    let counts = blocking(move || {
        let mut counts = Vec::new();
        for events in [&mut on_a, &mut on_b] {
            // What arrived meanwhile is buffered in the socket. Events
            // come through the NOTIFY listener, even a proxy's own: wait
            // for the first, then a second more for any duplicate.
            let mut deadline = Instant::now() + Duration::from_secs(15);
            let mut seen = Vec::new();
            while let Some(e) = events.next(deadline) {
                if e.id == id {
                    if seen.is_empty() {
                        deadline = Instant::now() + Duration::from_millis(1000);
                    }
                    seen.push(e.name);
                }
            }
            counts.push(seen);
        }
        (counts, id)
    })
    .await;
    let (counts, id) = counts;
    assert_eq!(
        counts,
        [
            vec!["request.created".to_string()],
            vec!["request.created".to_string()]
        ],
        "events for {id} on the proxy that holds it and on its peer"
    );
    let (status, _) = blocking(move || approve(admin_b, ALICE, &id)).await;
    assert_eq!(status, 200);
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 5), 2);
}
