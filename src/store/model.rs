//! The records of the store, as the admin API shows them.

use serde::Serialize;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Expired,
    Executed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Executed => "executed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "rejected" => Status::Rejected,
            "cancelled" => Status::Cancelled,
            "expired" => Status::Expired,
            "executed" => Status::Executed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement to hold for review.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub database: String,
    pub requester: String,
    pub client_addr: String,
    pub rule: String,
    pub risks: Vec<String>,
    pub approvers: Vec<String>,
    pub approvals_required: u32,
}

impl NewRequest {
    /// What makes two requests the same statement for a re-run grant:
    /// requester, database, SQL text and parameters.
    pub fn fingerprint(&self) -> String {
        let params = serde_json::to_string(&self.params).unwrap_or_default();
        // A length-prefixed join, so no two different tuples collide.
        let parts = [&self.requester, &self.database, &self.sql, &params];
        let mut key = String::new();
        for p in parts {
            key.push_str(&p.len().to_string());
            key.push(':');
            key.push_str(p);
        }
        format!(
            "{:016x}{:016x}",
            fnv(key.as_bytes(), 0),
            fnv(key.as_bytes(), 1)
        )
    }
}

/// FNV-1a, twice with different offsets: a stable 128-bit key (collisions
/// only cost a wrong lookup that the full comparison then rejects).
fn fnv(bytes: &[u8], salt: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ salt.wrapping_mul(0x9e3779b97f4a7c15);
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub reviewer: String,
    pub decision: String,
    pub comment: String,
    pub time: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comment {
    pub author: String,
    pub text: String,
    pub time: i64,
}

/// A request with its reviews and comments.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub id: String,
    pub status: Status,
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub database: String,
    pub requester: String,
    pub client_addr: String,
    pub rule: String,
    pub risks: Vec<String>,
    pub approvers: Vec<String>,
    pub approvals_required: u32,
    pub estimate_rows: Option<i64>,
    pub reviews: Vec<Review>,
    pub comments: Vec<Comment>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub grant_expires_at: Option<i64>,
    pub executed_at: Option<i64>,
    pub rows_affected: Option<i64>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub fingerprint: String,
}

impl Request {
    /// The reviewers who approved, in order.
    pub fn approvers_so_far(&self) -> Vec<&str> {
        self.reviews
            .iter()
            .filter(|r| r.decision == "approve")
            .map(|r| r.reviewer.as_str())
            .collect()
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    /// allow, deny, hold, approve, reject, cancel, expire, execute.
    pub event: String,
    pub request_id: Option<String>,
    pub requester: String,
    pub client_addr: String,
    pub database: String,
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub rule: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub rows_affected: Option<i64>,
    pub duration_ms: Option<i64>,
}
