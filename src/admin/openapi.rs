//! `GET /api/v1/openapi.json`: the API described in OpenAPI 3.0.

use axum::http::header;
use axum::response::IntoResponse;

static DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_and_names_every_route() {
        let v: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/api/v1/requests",
            "/api/v1/requests/{id}",
            "/api/v1/requests/{id}/approve",
            "/api/v1/requests/{id}/reject",
            "/api/v1/requests/{id}/comments",
            "/api/v1/audit",
            "/api/v1/sessions",
            "/api/v1/events",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
    }
}
