//! Reviewer authentication: `Authorization: Bearer <token>` against the
//! `[[reviewers]]` of the config, compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AdminState;
use crate::config::Reviewer;

/// The reviewer a request is authenticated as.
pub struct Authenticated(pub Reviewer);

/// Compares without an early exit, so the time taken does not tell how much
/// of a token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

impl FromRequestParts<AdminState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        // The scheme name is case-insensitive (RFC 7235).
        let (scheme, token) = header.split_once(' ').ok_or_else(ApiError::unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized());
        }
        let token = token.trim();
        // Check every reviewer, so timing does not tell which one matched.
        let mut found = None;
        for r in &state.proxy.config.reviewers {
            if constant_time_eq(r.token.as_bytes(), token.as_bytes()) {
                found = Some(r.clone());
            }
        }
        found.map(Authenticated).ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
