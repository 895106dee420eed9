//! The admin HTTP server, on `--admin-listen`.
//!
//! Endpoints:
//! - `GET /healthz`: the process is up (always 200 while it serves).
//! - `GET /readyz`: 200 when the upstream accepts TCP connections, else 503.
//! - `GET /metrics`: Prometheus text exposition of [`Metrics`](crate::metrics::Metrics).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::backend;
use crate::frontend::Proxy;

/// The admin routes over a running proxy.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(proxy)
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

async fn readyz(State(proxy): State<Arc<Proxy>>) -> impl IntoResponse {
    match backend::connect(&proxy.config.upstream, proxy.config.connect_timeout).await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        ),
    }
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        proxy.metrics.render(),
    )
}
