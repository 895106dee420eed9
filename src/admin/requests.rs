//! `/api/v1/requests`: list, read, approve, reject, comment.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Authenticated;
use super::error::ApiError;
use super::AdminState;
use crate::store::{AuditEvent, Request, Status};

pub fn router() -> Router<AdminState> {
    Router::new()
        .route("/api/v1/requests", get(list))
        .route("/api/v1/requests/{id}", get(one))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/reject", post(reject))
        .route("/api/v1/requests/{id}/comments", post(comment))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// The previous page's `next_before`: `CREATED_AT.ID` (or just a
    /// created_at, for everything created before it).
    before: Option<String>,
    limit: Option<u32>,
}

/// Parses a page cursor.
fn cursor(s: &str) -> Result<(i64, String), ApiError> {
    let (at, id) = s.split_once('.').unwrap_or((s, ""));
    let at: i64 = at
        .parse()
        .map_err(|_| ApiError::bad_request(format!("before {s:?} is not a page cursor")))?;
    // A bare time means "before this millisecond": every id there is "less".
    Ok(if id.is_empty() {
        (at, String::new())
    } else {
        (at, id.to_string())
    })
}

async fn list(
    State(state): State<AdminState>,
    _who: Authenticated,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status {s:?} (pending, approved, rejected, cancelled, expired, executed)"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let cursor = q
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(cursor)
        .transpose()?;
    let items = state.approvals()?.store.list(status, cursor, limit).await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten();
    Ok(Json(
        serde_json::json!({ "items": items, "next_before": next }),
    ))
}

async fn one(
    State(state): State<AdminState>,
    _who: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(state.approvals()?.store.get(&id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    text: String,
}

/// A body that must be a JSON object of the shape `T` (serde would also
/// read a struct from an array).
fn object<T: serde::de::DeserializeOwned>(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(v) = body?;
    if !v.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })
}

/// The rules of deciding: a reviewer decides only requests whose rule names
/// one of their groups, and never their own.
fn may_decide(who: &Authenticated, r: &Request) -> Result<(), ApiError> {
    let me = &who.0;
    if me.name == r.requester || me.roles.iter().any(|role| role == &r.requester) {
        return Err(ApiError::forbidden(format!(
            "{} cannot review their own request",
            me.name
        )));
    }
    if !r.approvers.iter().any(|g| me.groups.contains(g)) {
        return Err(ApiError::forbidden(format!(
            "request {} needs a reviewer from {}; {} is in {}",
            r.id,
            r.approvers.join(", "),
            me.name,
            if me.groups.is_empty() {
                "no group".to_string()
            } else {
                me.groups.join(", ")
            }
        )));
    }
    if r.status != Status::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_pending",
            format!("request {} is {}, not pending", r.id, r.status),
        ));
    }
    Ok(())
}

async fn decide(
    state: &AdminState,
    who: &Authenticated,
    id: &str,
    approve: bool,
    text: &str,
) -> Result<Json<Request>, ApiError> {
    let approvals = state.approvals()?;
    let r = approvals.store.get(id).await?;
    may_decide(who, &r)?;
    let grant = approvals.settings.grant_lifetime.as_millis() as i64;
    let r = approvals
        .store
        .review(id, &who.0.name, approve, text, grant)
        .await?;
    approvals.audit(AuditEvent {
        event: if approve { "approve" } else { "reject" }.into(),
        request_id: Some(r.id.clone()),
        requester: r.requester.clone(),
        client_addr: r.client_addr.clone(),
        database: r.database.clone(),
        sql: r.sql.clone(),
        params: r.params.clone(),
        rule: r.rule.clone(),
        outcome: r.status.to_string(),
        actor: Some(who.0.name.clone()),
        ..Default::default()
    });
    Ok(Json(r))
}

async fn approve(
    State(state): State<AdminState>,
    who: Authenticated,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Request>, ApiError> {
    let body: ApproveBody = object(body)?;
    decide(&state, &who, &id, true, &body.comment).await
}

async fn reject(
    State(state): State<AdminState>,
    who: Authenticated,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Request>, ApiError> {
    let body: RejectBody = object(body)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "a rejection needs a reason",
        ));
    }
    decide(&state, &who, &id, false, &body.reason).await
}

async fn comment(
    State(state): State<AdminState>,
    who: Authenticated,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Request>), ApiError> {
    let body: CommentBody = object(body)?;
    if body.text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "a comment needs text",
        ));
    }
    let r = state
        .approvals()?
        .store
        .comment(&id, &who.0.name, &body.text)
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}
