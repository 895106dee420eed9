//! The admin HTTP API, on `--admin-listen`, JSON throughout.
//!
//! Endpoints:
//! - `GET /healthz`: the process is up.
//! - `GET /readyz`: 200 when the upstream accepts connections, else 503.
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /api/v1/requests?status=pending&before=&limit=`: requests, newest
//!   first, paged (`next_before` is the next page's `before`, an opaque
//!   cursor).
//! - `GET /api/v1/requests/{id}`
//! - `POST /api/v1/requests/{id}/approve` `{"comment": "..."}`
//! - `POST /api/v1/requests/{id}/reject` `{"reason": "..."}`
//! - `POST /api/v1/requests/{id}/comments` `{"text": "..."}`
//! - `GET /api/v1/audit?before=&limit=`: the audit trail, newest first.
//! - `GET /api/v1/sessions`: client sessions open now.
//! - `GET /api/v1/events`: Server-Sent Events as requests are created,
//!   decided and executed.
//! - `GET /api/v1/openapi.json`: an OpenAPI document of this API.
//!
//! Everything under `/api/v1/` except the OpenAPI document needs
//! `Authorization: Bearer <token>` of a `[[reviewers]]` entry. Errors are
//! `{"error": {"code", "message"}}` with the fitting status: 401, 403, 404,
//! 409, 400/422, 503.

mod auth;
mod error;
mod events;
mod openapi;
mod requests;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::approval::Approvals;
use crate::backend;
use crate::frontend::Proxy;
use auth::Authenticated;
pub use error::ApiError;

/// What every handler sees.
#[derive(Clone)]
pub struct AdminState {
    pub proxy: Arc<Proxy>,
}

impl AdminState {
    fn approvals(&self) -> Result<&Arc<Approvals>, ApiError> {
        self.proxy.approvals.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_store",
                "no approval store is configured",
            )
        })
    }
}

/// The admin routes over a running proxy.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/catalogs", get(catalogs))
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(requests::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .with_state(AdminState { proxy })
}

/// Serves the admin API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(proxy))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let config = &state.proxy.config;
    match backend::connect(&config.upstream, config.connect_timeout).await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        ),
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.proxy.metrics.render(),
    )
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit(
    State(state): State<AdminState>,
    _who: Authenticated,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = state
        .approvals()?
        .store
        .audit_trail(q.before, limit)
        .await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(Json(
        serde_json::json!({ "items": items, "next_before": next }),
    ))
}

async fn sessions(State(state): State<AdminState>, _who: Authenticated) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "items": state.proxy.sessions.list() }))
}

async fn catalogs(State(state): State<AdminState>, _who: Authenticated) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "items": state.proxy.catalogs.status() }))
}
