//! The admin API over HTTP against the real proxy and PostgreSQL: every
//! error status with its JSON body and the rules of deciding (the views —
//! paging, comments, sessions, OpenAPI, metrics, events — are in
//! admin_api_views.rs). Each test checks the database itself as well as the
//! API.

mod common;

use common::http::call;
use common::review::*;
use common::*;

use tokio_postgres::error::SqlState;

/// Every `/api/v1` route that needs a token, with a body each accepts.
fn protected_routes(id: &str) -> Vec<(&'static str, String, Option<&'static str>)> {
    vec![
        ("GET", "/api/v1/requests".into(), None),
        ("GET", "/api/v1/requests?status=pending".into(), None),
        ("GET", format!("/api/v1/requests/{id}"), None),
        (
            "POST",
            format!("/api/v1/requests/{id}/approve"),
            Some(r#"{"comment": "ok"}"#),
        ),
        (
            "POST",
            format!("/api/v1/requests/{id}/reject"),
            Some(r#"{"reason": "no"}"#),
        ),
        (
            "POST",
            format!("/api/v1/requests/{id}/comments"),
            Some(r#"{"text": "hm"}"#),
        ),
        ("GET", "/api/v1/audit".into(), None),
        ("GET", "/api/v1/sessions".into(), None),
        ("GET", "/api/v1/events".into(), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_needs_a_valid_reviewer_token() {
    let t = unique("api_auth");
    table(&t);
    let proxy = proxy(|_| {});
    let (held, _cancel) = hold(&proxy, format!("UPDATE {t} SET v = 1 WHERE id = 1")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let admin = proxy.admin;
    let id2 = id.clone();
    let id3 = id.clone();
    blocking(move || {
        let json = "Content-Type: application/json";
        let bad_headers: Vec<Vec<String>> = vec![
            vec![],
            vec!["Authorization: Basic YWxpY2U6YWxpY2U=".into()],
            vec!["Authorization: Bearer".into()],
            vec!["Authorization: Bearer ".into()],
            vec![format!("Authorization: {ALICE}")],
            vec![format!("Authorization: Bearer{ALICE}")],
            vec![format!("Authorization: Token {ALICE}")],
            vec!["Authorization: Bearer wrong-token-0000000000000".into()],
            vec![format!(
                "Authorization: Bearer {}",
                &ALICE[..ALICE.len() - 1]
            )],
            vec![format!("Authorization: Bearer {ALICE}x")],
        ];
        for (method, path, body) in protected_routes(&id2) {
            for headers in &bad_headers {
                let mut h: Vec<&str> = headers.iter().map(String::as_str).collect();
                if body.is_some() {
                    h.push(json);
                }
                let got = raw_json(admin, method, &path, &h, body);
                assert_error(&format!("{method} {path} {h:?}"), got, 401, "unauthorized");
            }
        }
        // Authentication comes before the body is looked at.
        let got = raw_json(
            admin,
            "POST",
            &format!("/api/v1/requests/{id3}/approve"),
            &[json],
            Some("not json"),
        );
        assert_error(
            "approve without a token, bad body",
            got,
            401,
            "unauthorized",
        );
        // The OpenAPI document and health are public.
        assert_eq!(raw(admin, "GET", "/api/v1/openapi.json", &[], None).0, 200);
        assert_eq!(raw(admin, "GET", "/healthz", &[], None).0, 200);
    })
    .await;

    // None of it changed anything.
    let i = id.clone();
    let r = blocking(move || request(admin, &i)).await;
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["reviews"], serde_json::json!([]), "{r}");
    assert_eq!(r["comments"], serde_json::json!([]), "{r}");
    assert_eq!(value(&t, 1), 0);
    // The right token works, and the client gets its result.
    let (status, body) = blocking(move || approve(admin, ALICE, &id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 1), 1);
}

#[test]
fn unknown_requests_and_routes_are_404() {
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let ghost = "rnosuchrequest";
    for (method, path, body) in [
        ("GET", format!("/api/v1/requests/{ghost}"), None),
        (
            "POST",
            format!("/api/v1/requests/{ghost}/approve"),
            Some(r#"{"comment": "ok"}"#),
        ),
        (
            "POST",
            format!("/api/v1/requests/{ghost}/reject"),
            Some(r#"{"reason": "no"}"#),
        ),
        (
            "POST",
            format!("/api/v1/requests/{ghost}/comments"),
            Some(r#"{"text": "hm"}"#),
        ),
    ] {
        let got = call(admin, method, &path, Some(ALICE), body);
        let message = got.1["error"]["message"].as_str().unwrap_or("").to_string();
        assert_error(&format!("{method} {path}"), got, 404, "not_found");
        assert!(message.contains(ghost), "{path}: {message}");
    }
    for (method, path) in [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v2/requests"),
        ("GET", "/nope"),
        ("GET", "/api/v1/requests/x/approve/more"),
        ("POST", "/api/v1/requests/x/decide"),
        ("GET", "/api/v1/requests/"),
    ] {
        for token in [Some(ALICE), None] {
            let got = call(admin, method, path, token, None);
            assert_error(&format!("{method} {path} {token:?}"), got, 404, "not_found");
        }
    }
    // Nothing was created by any of it.
    let (status, body) = call(admin, "GET", "/api/v1/requests", Some(ALICE), None);
    assert_eq!(status, 200);
    assert_eq!(body["items"], serde_json::json!([]), "{body}");
}

/// A known route with the wrong method is an error too, and errors are JSON.
#[test]
fn a_wrong_method_is_a_json_405() {
    let proxy = proxy(|_| {});
    for (method, path) in [
        ("POST", "/api/v1/requests"),
        ("GET", "/api/v1/requests/rnosuchrequest/approve"),
        ("DELETE", "/api/v1/requests/rnosuchrequest"),
    ] {
        let got = call(proxy.admin, method, path, Some(ALICE), None);
        assert_eq!(got.0, 405, "{method} {path}: {}", got.1);
        assert!(
            got.1["error"]["code"].is_string() && got.1["error"]["message"].is_string(),
            "{method} {path}: 405 without a JSON error body: {}",
            got.1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deciding_an_executed_or_rejected_request_is_409() {
    let t = unique("api_409");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;

    // Approved and run: it is executed now.
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = v + 10 WHERE id = 1")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let i = id.clone();
    let (status, body) = blocking(move || approve(admin, ALICE, &i)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    let i = id.clone();
    blocking(move || {
        wait_status(admin, &i, "executed");
        assert_error(
            "approve executed",
            approve(admin, BOB, &i),
            409,
            "not_pending",
        );
        assert_error(
            "reject executed",
            reject(admin, BOB, &i, "too late"),
            409,
            "not_pending",
        );
        let r = request(admin, &i);
        assert_eq!(r["status"], "executed", "{r}");
        assert_eq!(r["reviews"].as_array().unwrap().len(), 1, "{r}");
        // Two writers queue these (the session, the API): either may
        // come first.
        wait_audit(admin, &i, "execute");
        let trail = wait_audit(admin, &i, "approve");
        let approvals = trail.iter().filter(|e| e["event"] == "approve").count();
        assert_eq!(approvals, 1, "refused decisions are not audited: {trail:?}");
    })
    .await;
    assert_eq!(value(&t, 1), 10, "ran exactly once");

    // Rejected: the client gets 42501 with the reason; no second decision.
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = v + 10 WHERE id = 2")).await;
    let needle = format!("{t} SET v = v + 10 WHERE id = 2");
    let i = blocking(move || pending(admin, &needle)["id"].as_str().unwrap().to_string()).await;
    let i2 = i.clone();
    let (status, body) = blocking(move || reject(admin, ALICE, &i2, "not on a Friday")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    let err = held.await.unwrap().unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    assert!(
        db.message().contains("alice") && db.message().contains("not on a Friday"),
        "{}",
        db.message()
    );
    blocking(move || {
        assert_error(
            "approve rejected",
            approve(admin, BOB, &i),
            409,
            "not_pending",
        );
        assert_error(
            "reject rejected",
            reject(admin, BOB, &i, "again"),
            409,
            "not_pending",
        );
        let r = request(admin, &i);
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["reason"], "not on a Friday", "{r}");
    })
    .await;
    assert_eq!(value(&t, 2), 0, "a rejected statement never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deciding_a_cancelled_request_is_409() {
    let t = unique("api_cancel");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (held, cancel) = hold(&proxy, format!("UPDATE {t} SET v = 5 WHERE id = 3")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = held.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    blocking(move || {
        wait_status(admin, &id, "cancelled");
        assert_error(
            "approve cancelled",
            approve(admin, ALICE, &id),
            409,
            "not_pending",
        );
        assert_error(
            "reject cancelled",
            reject(admin, ALICE, &id, "moot"),
            409,
            "not_pending",
        );
        assert_eq!(request(admin, &id)["reviews"], serde_json::json!([]));
    })
    .await;
    assert_eq!(value(&t, 3), 0);
}

/// A hold that timed out leaves the request open; approved, it waits for a
/// re-run (status `approved`), cannot be decided again, and the identical
/// statement then runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deciding_an_approved_request_is_409_and_the_rerun_runs_once() {
    let t = unique("api_approved");
    table(&t);
    let proxy = TestProxy::with_policy(config(), Some(quick_policy("1s")));
    let admin = proxy.admin;
    let client = proxy.connect("postgres", "airlock_test").await;
    let sql = format!("UPDATE {t} SET v = v + 1 WHERE id = 4");
    let err = client.execute(sql.as_str(), &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    let needle = t.clone();
    let id = blocking(move || pending(admin, &needle)["id"].as_str().unwrap().to_string()).await;
    let i = id.clone();
    blocking(move || {
        let (status, body) = approve(admin, ALICE, &i);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "approved", "{body}");
        assert!(body["grant_expires_at"].as_i64().is_some(), "{body}");
        assert_error(
            "approve approved",
            approve(admin, BOB, &i),
            409,
            "not_pending",
        );
        assert_error(
            "reject approved",
            reject(admin, BOB, &i, "changed my mind"),
            409,
            "not_pending",
        );
        assert_eq!(request(admin, &i)["status"], "approved");
    })
    .await;
    assert_eq!(value(&t, 4), 0, "nothing ran before the re-run");
    // The session survived the timeout; the identical statement runs now.
    assert_eq!(client.execute(sql.as_str(), &[]).await.unwrap(), 1);
    assert_eq!(value(&t, 4), 1);
    let i = id.clone();
    // The outcome is stored after the client has its answer.
    let r = blocking(move || {
        request_until(admin, &i, |r| {
            r["status"] == "executed" && !r["rows_affected"].is_null()
        })
    })
    .await;
    assert_eq!(r["rows_affected"], 1, "{r}");
    // Once: a third run is held again as a new request.
    let third = tokio::spawn(async move { client.execute(sql.as_str(), &[]).await });
    let needle = t.clone();
    let again = blocking(move || pending(admin, &needle)).await;
    assert_ne!(again["id"], id.as_str());
    let err = third.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert_eq!(value(&t, 4), 1, "the grant was used once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_review_by_the_same_reviewer_is_409() {
    let t = unique("api_twice");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    // No WHERE clause: the shipped policy wants two approvals.
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 9")).await;
    let (id, r) = pending_on(&proxy, &t).await;
    assert_eq!(r["approvals_required"], 2, "{r}");
    let i = id.clone();
    blocking(move || {
        let (status, body) = approve(admin, ALICE, &i);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "pending", "one of two approvals: {body}");
        assert_error(
            "alice again",
            approve(admin, ALICE, &i),
            409,
            "already_reviewed",
        );
        assert_error(
            "alice rejects after approving",
            reject(admin, ALICE, &i, "second thoughts"),
            409,
            "already_reviewed",
        );
        let r = request(admin, &i);
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["reviews"].as_array().unwrap().len(), 1, "{r}");
    })
    .await;
    assert_eq!(total(&t), 0, "one approval of two runs nothing");
    let i = id.clone();
    let (status, body) = blocking(move || approve(admin, BOB, &i)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 5);
    assert_eq!(total(&t), 45);
    let r = blocking(move || wait_status(admin, &id, "executed")).await;
    let who: Vec<&str> = r["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_approval_and_reviewers_outside_the_groups_are_403() {
    let t = unique("api_403");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 3 WHERE id = 5")).await;
    let (id, r) = pending_on(&proxy, &t).await;
    assert_eq!(r["requester"], "postgres");
    assert_eq!(r["approvers"], serde_json::json!(["reviewers"]));
    let i = id.clone();
    blocking(move || {
        for (who, token) in [
            ("reviewer named like the role", SELF_NAMED),
            ("reviewer whose roles hold it", DBA),
            ("auditor", CAROL),
        ] {
            assert_error(
                &format!("{who} approves"),
                approve(admin, token, &i),
                403,
                "forbidden",
            );
            assert_error(
                &format!("{who} rejects"),
                reject(admin, token, &i, "mine"),
                403,
                "forbidden",
            );
        }
        let r = request(admin, &i);
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["reviews"], serde_json::json!([]), "{r}");
        // Commenting is not deciding: anyone with a token may.
        let (status, body) = call(
            admin,
            "POST",
            &format!("/api/v1/requests/{i}/comments"),
            Some(CAROL),
            Some(r#"{"text": "auditor was here"}"#),
        );
        assert_eq!(status, 201, "{body}");
    })
    .await;
    assert_eq!(value(&t, 5), 0);
    let (status, body) = blocking(move || approve(admin, BOB, &id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 5), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_or_422() {
    let t = unique("api_bodies");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 2 WHERE id = 2")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let i = id.clone();
    blocking(move || {
        let cases: &[(&str, &str, u16, &str)] = &[
            ("approve", "not json", 400, "bad_request"),
            ("approve", "{\"comment\": ", 400, "bad_request"),
            ("approve", "{\"comment\": 5}", 422, "invalid_body"),
            (
                "approve",
                "{\"comment\": \"ok\", \"force\": true}",
                422,
                "invalid_body",
            ),
            ("reject", "not json", 400, "bad_request"),
            ("reject", "{}", 422, "invalid_body"),
            ("reject", "{\"reason\": 3}", 422, "invalid_body"),
            ("reject", "{\"reason\": null}", 422, "invalid_body"),
            ("reject", "{\"reason\": \"\"}", 422, "invalid_body"),
            ("reject", "{\"reason\": \"  \\n \"}", 422, "invalid_body"),
            (
                "reject",
                "{\"reason\": \"x\", \"extra\": 1}",
                422,
                "invalid_body",
            ),
            ("comments", "not json", 400, "bad_request"),
            ("comments", "{}", 422, "invalid_body"),
            ("comments", "{\"text\": \"\"}", 422, "invalid_body"),
            ("comments", "{\"text\": \" \"}", 422, "invalid_body"),
            ("comments", "{\"text\": 1}", 422, "invalid_body"),
            ("comments", "{\"txt\": \"hello\"}", 422, "invalid_body"),
        ];
        for (action, body, status, code) in cases {
            let got = call(
                admin,
                "POST",
                &format!("/api/v1/requests/{i}/{action}"),
                Some(ALICE),
                Some(body),
            );
            assert_error(&format!("{action} {body}"), got, *status, code);
        }
        let got = call(
            admin,
            "GET",
            "/api/v1/requests?status=maybe",
            Some(ALICE),
            None,
        );
        assert_error("status=maybe", got, 400, "bad_request");
        let r = request(admin, &i);
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["reviews"], serde_json::json!([]), "{r}");
        assert_eq!(r["comments"], serde_json::json!([]), "{r}");
    })
    .await;
    assert_eq!(value(&t, 2), 0);
    // An approval without a comment is fine.
    let (status, body) = blocking(move || {
        call(
            admin,
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some(ALICE),
            Some("{}"),
        )
    })
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(value(&t, 2), 2);
}

/// A JSON array is not an object with the body's fields, even where serde
/// would read a struct from a sequence: it must not approve, reject or
/// comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_not_a_decision() {
    let t = unique("api_array");
    table(&t);
    let proxy = proxy(|_| {});
    let admin = proxy.admin;
    let (held, _c) = hold(&proxy, format!("UPDATE {t} SET v = 8 WHERE id = 3")).await;
    let (id, _) = pending_on(&proxy, &t).await;
    let i = id.clone();
    blocking(move || {
        for (action, body) in [
            ("comments", r#"["hello"]"#),
            ("reject", r#"["why not"]"#),
            ("approve", "[]"),
        ] {
            let got = call(
                admin,
                "POST",
                &format!("/api/v1/requests/{i}/{action}"),
                Some(ALICE),
                Some(body),
            );
            let r = request(admin, &i);
            assert_error(
                &format!("{action} {body} (request now {r})"),
                got,
                422,
                "invalid_body",
            );
        }
        let r = request(admin, &i);
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["comments"], serde_json::json!([]), "{r}");
    })
    .await;
    assert_eq!(value(&t, 3), 0);
    let (status, body) = blocking(move || approve(admin, BOB, &id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
}

/// Query strings that do not parse are client errors with JSON bodies too.
#[test]
fn malformed_query_strings_are_json_400s() {
    let proxy = proxy(|_| {});
    for path in [
        "/api/v1/requests?limit=abc",
        "/api/v1/requests?before=yesterday",
        "/api/v1/requests?limit=-1",
        "/api/v1/audit?limit=lots",
    ] {
        let got = call(proxy.admin, "GET", path, Some(ALICE), None);
        assert_error(path, got, 400, "bad_request");
    }
}
