//! The admin API's views over HTTP against the real proxy and PostgreSQL:
//! paging and filtering, comments, sessions, the OpenAPI document, metrics
//! and the event stream. (Error statuses and the rules of deciding are in
//! admin_api.rs.)

mod common;

use std::time::{Duration, Instant};

use airlock::store::{NewRequest, Store};
use common::http::call;
use common::review::*;
use common::*;
use serde_json::Value;

fn new_request(sql: String) -> NewRequest {
    NewRequest {
        sql,
        params: vec![],
        database: "airlock_test".into(),
        requester: "app".into(),
        client_addr: "127.0.0.1:1".into(),
        rule: "writes".into(),
        risks: vec![],
        approvers: vec!["reviewers".into()],
        approvals_required: 1,
    }
}

/// Follows `next_before` from `first` to the end; returns the pages' ids.
fn pages(admin: std::net::SocketAddr, first: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut path = first.to_string();
    for _ in 0..50 {
        let (status, body) = call(admin, "GET", &path, Some(ALICE), None);
        assert_eq!(status, 200, "{path}: {body}");
        let items = body["items"].as_array().unwrap();
        let times: Vec<i64> = items
            .iter()
            .map(|r| r["created_at"].as_i64().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {times:?}"
        );
        out.push(
            items
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect(),
        );
        match body["next_before"].as_str() {
            None => {
                assert!(body["next_before"].is_null(), "{body}");
                return out;
            }
            Some(b) => {
                // An opaque cursor: the last item's created_at and id.
                let last = items.last().unwrap();
                assert_eq!(
                    b,
                    format!("{}.{}", last["created_at"], last["id"].as_str().unwrap()),
                    "next_before is the last item's"
                );
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!("{first}{sep}before={b}");
            }
        }
    }
    panic!("paging did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_newest_first_in_pages_and_filtered_by_status() {
    let file = std::env::temp_dir().join(format!("{}.db", unique("airlock-api-pages")));
    let url = format!("sqlite://{}", file.display());
    let u = url.clone();
    let proxy = proxy(move |c| c.store = u);
    let admin = proxy.admin;
    let store = Store::open(&url).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..7 {
        let r = store
            .create(&new_request(format!("UPDATE t SET v = {n}")))
            .await
            .unwrap();
        ids.push(r.id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for id in [&ids[1], &ids[4]] {
        store.review(id, "bob", false, "no", 60_000).await.unwrap();
    }
    store
        .review(&ids[2], "bob", true, "ok", 60_000)
        .await
        .unwrap();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let ids2 = ids.clone();
    blocking(move || {
        let p = pages(admin, "/api/v1/requests?limit=3");
        assert_eq!(
            p.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 1],
            "{p:?}"
        );
        assert_eq!(p.concat(), newest_first);
        // The default page holds them all, and an empty status means all.
        assert_eq!(pages(admin, "/api/v1/requests").concat(), newest_first);
        assert_eq!(
            pages(admin, "/api/v1/requests?status=").concat(),
            newest_first
        );

        let of = |status: &str, limit: u32| {
            pages(
                admin,
                &format!("/api/v1/requests?status={status}&limit={limit}"),
            )
            .concat()
        };
        assert_eq!(of("rejected", 50), [ids2[4].clone(), ids2[1].clone()]);
        assert_eq!(of("approved", 50), [ids2[2].clone()]);
        let pending: Vec<String> = [6, 5, 3, 0].iter().map(|&i| ids2[i].clone()).collect();
        assert_eq!(of("pending", 50), pending);
        assert_eq!(of("pending", 1), pending, "one per page");
        assert_eq!(of("pending", 3), pending);
        assert!(of("executed", 10).is_empty());
        let (status, body) = call(
            admin,
            "GET",
            "/api/v1/requests?status=rejected",
            Some(ALICE),
            None,
        );
        assert_eq!(status, 200);
        for r in body["items"].as_array().unwrap() {
            assert_eq!(r["status"], "rejected", "{r}");
            assert_eq!(r["reason"], "no", "{r}");
        }
    })
    .await;
}

/// Requests created in the same millisecond (a burst, or several proxies on
/// one store) must not fall between two pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_does_not_skip_requests_created_in_the_same_millisecond() {
    let file = std::env::temp_dir().join(format!("{}.db", unique("airlock-api-ties")));
    let url = format!("sqlite://{}", file.display());
    let u = url.clone();
    let proxy = proxy(move |c| c.store = u);
    let admin = proxy.admin;
    let store = Store::open(&url).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..6 {
        let r = store
            .create(&new_request(format!("DELETE FROM t WHERE id = {n}")))
            .await
            .unwrap();
        ids.push(r.id);
    }
    // Make the burst exact: one millisecond for all six.
    let pool = sqlx::sqlite::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE requests SET created_at = 1700000000000")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut all = blocking(move || pages(admin, "/api/v1/requests?limit=2").concat()).await;
    all.sort();
    ids.sort();
    assert_eq!(
        all, ids,
        "every request must be on exactly one page (paging by created_at alone loses ties)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_appear_on_the_request() {
    let t = unique("api_comments");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 4 WHERE id = 1")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let i = id.clone();
    blocking(move || {
        let path = format!("/api/v1/requests/{i}/comments");
        let (status, body) = call(
            admin,
            "POST",
            &path,
            Some(BOB),
            Some(r#"{"text": "which ticket is this?"}"#),
        );
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["id"], i.as_str());
        assert_eq!(body["comments"][0]["author"], "bob", "{body}");
        let (status, body) = call(
            admin,
            "POST",
            &path,
            Some(CAROL),
            Some(r#"{"text": "OPS-1234 \u00e9t\u00e9"}"#),
        );
        assert_eq!(status, 201, "{body}");
        let r = request(admin, &i);
        let comments = r["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 2, "{r}");
        assert_eq!(comments[0]["author"], "bob");
        assert_eq!(comments[0]["text"], "which ticket is this?");
        assert_eq!(comments[1]["author"], "carol");
        assert_eq!(comments[1]["text"], "OPS-1234 été");
        assert!(comments[1]["time"].as_i64().unwrap() >= comments[0]["time"].as_i64().unwrap());
        assert_eq!(r["status"], "pending", "a comment decides nothing: {r}");
        assert_eq!(r["reviews"], serde_json::json!([]));
        // And in the list.
        let (_, list) = call(admin, "GET", "/api/v1/requests", Some(ALICE), None);
        let listed = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == i.as_str())
            .cloned()
            .unwrap();
        assert_eq!(listed["comments"], r["comments"], "{listed}");
    })
    .await;
    assert_eq!(value(&t, 1), 0);
    let i = id.clone();
    blocking(move || {
        let (status, body) = approve(admin, ALICE, &i);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["comments"].as_array().unwrap().len(), 2, "{body}");
    })
    .await;
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 1), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_lists_open_sessions() {
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let app = unique("sessions_app");
    let mut clients = Vec::new();
    for n in 0..2 {
        let std = std::net::TcpStream::connect(proxy.addr).unwrap();
        std.set_nonblocking(true).unwrap();
        let local = std.local_addr().unwrap();
        let stream = tokio::net::TcpStream::from_std(std).unwrap();
        let config: tokio_postgres::Config =
            format!("user=postgres dbname=airlock_test application_name={app}_{n}")
                .parse()
                .unwrap();
        let (client, conn) = config
            .connect_raw(stream, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let pid: i32 = client
            .query_one("select pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        clients.push((client, local, pid));
    }
    let (status, body) = acall(admin, "GET", "/api/v1/sessions", Some(ALICE), None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    for (n, (_, local, pid)) in clients.iter().enumerate() {
        let s = items
            .iter()
            .find(|s| s["backend_pid"] == *pid)
            .unwrap_or_else(|| panic!("no session with backend pid {pid}: {body}"));
        assert_eq!(s["user"], "postgres", "{s}");
        assert_eq!(s["database"], "airlock_test", "{s}");
        assert_eq!(s["client_addr"], local.to_string(), "{s}");
        assert_eq!(s["application_name"], format!("{app}_{n}"), "{s}");
        // The pid is the real upstream backend of that session.
        let seen = scalar(
            "postgres",
            &format!("select application_name from pg_stat_activity where pid = {pid}"),
        );
        assert_eq!(seen, format!("{app}_{n}"));
    }
    // A session that ends leaves the list.
    let (gone, _, gone_pid) = clients.remove(0);
    drop(gone);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = acall(admin, "GET", "/api/v1/sessions", Some(ALICE), None).await;
        let items = body["items"].as_array().unwrap().clone();
        if items.len() == 1 {
            assert_eq!(items[0]["backend_pid"], clients[0].2, "{body}");
            assert!(items.iter().all(|s| s["backend_pid"] != gone_pid));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed session still listed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[test]
fn the_openapi_document_lists_every_route_and_every_route_it_lists_exists() {
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (status, head, body) = raw(admin, "GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let doc: Value = serde_json::from_str(&body).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/requests", "get"),
        ("/api/v1/requests/{id}", "get"),
        ("/api/v1/requests/{id}/approve", "post"),
        ("/api/v1/requests/{id}/reject", "post"),
        ("/api/v1/requests/{id}/comments", "post"),
        ("/api/v1/audit", "get"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/events", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    // What the document lists is served (the event stream is checked below).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let concrete = path.replace("{id}", "rnosuchrequest");
            let upper = method.to_ascii_uppercase();
            let body = match concrete.rsplit('/').next() {
                Some("approve") => Some(r#"{"comment": "x"}"#),
                Some("reject") => Some(r#"{"reason": "x"}"#),
                Some("comments") => Some(r#"{"text": "x"}"#),
                _ => None,
            };
            if path == "/api/v1/events" {
                let ev = Events::open(admin, ALICE);
                drop(ev);
                continue;
            }
            let (status, value) = call(admin, &upper, &concrete, Some(ALICE), body);
            let message = value["error"]["message"].as_str().unwrap_or("");
            assert!(
                status != 405 && !message.contains("no such endpoint"),
                "{upper} {concrete} is documented but not served: {status} {value}"
            );
            if path.contains("{id}") {
                assert_eq!(status, 404, "{upper} {concrete}: {value}");
            } else {
                assert!(
                    status == 200 || (path == "/readyz" && status == 503),
                    "{upper} {concrete}: {status} {value}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_holds() {
    let t = unique("api_metrics");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let m = blocking(move || metrics(admin)).await;
    assert_eq!(m["holds_total"], 0.0, "{m:?}");
    assert_eq!(m["holds_pending"], 0.0, "{m:?}");

    // Approved.
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 1 WHERE id = 1")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let m = blocking(move || metrics(admin)).await;
    assert_eq!((m["holds_total"], m["holds_pending"]), (1.0, 1.0), "{m:?}");
    let (status, _) = blocking(move || approve(admin, ALICE, &id)).await;
    assert_eq!(status, 200);
    assert_eq!(held.await.unwrap().unwrap(), 1);
    blocking(move || wait_metric(admin, "holds_pending", 0.0)).await;

    // Two at once, one rejected, one cancelled.
    let (a, _ca) = hold(&proxy, format!("UPDATE {t} SET v = 2 WHERE id = 2")).await;
    let (b, cb) = hold(&proxy, format!("UPDATE {t} SET v = 3 WHERE id = 3")).await;
    let needle = format!("{t} SET v = 2");
    let ida = blocking(move || pending(admin, &needle)["id"].as_str().unwrap().to_string()).await;
    let needle = format!("{t} SET v = 3");
    blocking(move || pending(admin, &needle)).await;
    let m = blocking(move || metrics(admin)).await;
    assert_eq!((m["holds_total"], m["holds_pending"]), (3.0, 2.0), "{m:?}");
    let (status, _) = blocking(move || reject(admin, ALICE, &ida, "no")).await;
    assert_eq!(status, 200);
    assert!(a.await.unwrap().is_err());
    blocking(move || wait_metric(admin, "holds_pending", 1.0)).await;
    cb.cancel_query(tokio_postgres::NoTls).await.unwrap();
    assert!(b.await.unwrap().is_err());
    blocking(move || wait_metric(admin, "holds_pending", 0.0)).await;
    let m = blocking(move || metrics(admin)).await;
    assert_eq!(m["holds_total"], 3.0, "{m:?}");
    assert_eq!((value(&t, 1), value(&t, 2), value(&t, 3)), (1, 0, 0));
}

/// A client that hangs up while its statement is held is no longer held:
/// its session ends and the gauge comes down.
#[test]
fn holds_pending_falls_when_a_held_client_disconnects() {
    let t = unique("api_hangup");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let mut client = std::process::Command::new(&pg().psql)
        .args(["-X", "-h", "127.0.0.1", "-p", &proxy.port().to_string()])
        .args(["-U", "postgres", "-d", "airlock_test", "-c"])
        .arg(format!("UPDATE {t} SET v = 1 WHERE id = 1"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let r = pending(admin, &t);
    wait_metric(admin, "holds_pending", 1.0);
    // SIGKILL: the client's socket closes without a Terminate.
    client.kill().unwrap();
    client.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(admin, "GET", "/api/v1/sessions", Some(ALICE), None);
        assert_eq!(status, 200);
        if body["items"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "session still open: {body}");
        std::thread::sleep(Duration::from_millis(30));
    }
    wait_metric(admin, "holds_pending", 0.0);
    assert_eq!(metrics(admin)["holds_total"], 1.0);
    assert_eq!(value(&t, 1), 0);
    // The request itself stays for the reviewers (a re-run can use it).
    let r = request(admin, r["id"].as_str().unwrap());
    assert_eq!(r["status"], "pending", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_tells_of_created_and_decided_requests() {
    let t = unique("api_events");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let mut events = blocking(move || Events::open(admin, BOB)).await;

    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 6 WHERE id = 1")).await;
    let needle = t.clone();
    let (created, events2) = blocking(move || {
        let e = events.first_for_sql(&needle, Duration::from_secs(15));
        (e, events)
    })
    .await;
    let mut events = events2;
    assert_eq!(created.name, "request.created", "{created:?}");
    assert_eq!(created.data["status"], "pending");
    let id = created.data["id"].as_str().unwrap().to_string();
    assert_eq!(created.id, id);
    assert_eq!(created.data["requester"], "postgres");

    let i = id.clone();
    let (status, body) = blocking(move || approve(admin, ALICE, &i)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    let i = id.clone();
    let seen = blocking(move || {
        events.until(
            &i,
            &["request.decided", "request.executed"],
            Duration::from_secs(15),
        )
    })
    .await;
    let last = seen.last().unwrap();
    assert!(
        ["approved", "executed"].contains(&last.data["status"].as_str().unwrap()),
        "{last:?}"
    );
    assert_eq!(last.data["reviews"][0]["reviewer"], "alice", "{last:?}");
    assert_eq!(value(&t, 1), 6);

    // Rejections are told too.
    let mut events = blocking(move || Events::open(admin, CAROL)).await;
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 7 WHERE id = 2")).await;
    let needle = format!("{t} SET v = 7");
    let (created, mut events) = blocking(move || {
        let e = events.first_for_sql(&needle, Duration::from_secs(15));
        (e, events)
    })
    .await;
    assert_eq!(created.name, "request.created");
    let id = created.data["id"].as_str().unwrap().to_string();
    let i = id.clone();
    let (status, _) = blocking(move || reject(admin, BOB, &i, "nope")).await;
    assert_eq!(status, 200);
    let seen =
        blocking(move || events.until(&id, &["request.decided"], Duration::from_secs(15))).await;
    assert_eq!(seen.last().unwrap().data["status"], "rejected");
    assert!(held.await.unwrap().is_err());
    assert_eq!(value(&t, 2), 0);
}
