//! Queries on requests, reviews, comments and the audit trail. Written once
//! for both backends: `$n` placeholders work in SQLite and PostgreSQL alike.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::model::{AuditEvent, Comment, NewRequest, Request, Review, Status};
use super::{now_ms, Backend, Store, StoreError};

const COLUMNS: &str =
    "id, status, sql, params, fingerprint, database_name, requester, client_addr, \
    rule, risks, approvers, approvals_required, estimate_rows, created_at, decided_at, \
    grant_expires_at, executed_at, rows_affected, reason";

fn json_list<T: serde::de::DeserializeOwned>(s: &str) -> Vec<T> {
    serde_json::from_str(s).unwrap_or_default()
}

fn request_from(row: &AnyRow) -> Result<Request, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Request {
        id: row.try_get("id")?,
        status: Status::parse(&status).unwrap_or(Status::Expired),
        sql: row.try_get("sql")?,
        params: json_list(&row.try_get::<String, _>("params")?),
        fingerprint: row.try_get("fingerprint")?,
        database: row.try_get("database_name")?,
        requester: row.try_get("requester")?,
        client_addr: row.try_get("client_addr")?,
        rule: row.try_get("rule")?,
        risks: json_list(&row.try_get::<String, _>("risks")?),
        approvers: json_list(&row.try_get::<String, _>("approvers")?),
        approvals_required: row.try_get::<i64, _>("approvals_required")? as u32,
        estimate_rows: row.try_get("estimate_rows")?,
        created_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
        grant_expires_at: row.try_get("grant_expires_at")?,
        executed_at: row.try_get("executed_at")?,
        rows_affected: row.try_get("rows_affected")?,
        reason: row.try_get("reason")?,
        reviews: Vec::new(),
        comments: Vec::new(),
    })
}

/// A new request id: `r` and twelve base-32 characters.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut id = String::from("r");
    for _ in 0..12 {
        id.push(ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char);
    }
    id
}

impl Store {
    /// Records a held statement as a pending request.
    pub async fn create(&self, new: &NewRequest) -> Result<Request, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO requests (id, status, sql, params, fingerprint, database_name, requester, \
             client_addr, rule, risks, approvers, approvals_required, created_at) \
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(&new.sql)
        .bind(serde_json::to_string(&new.params).unwrap_or_default())
        .bind(new.fingerprint())
        .bind(&new.database)
        .bind(&new.requester)
        .bind(&new.client_addr)
        .bind(&new.rule)
        .bind(serde_json::to_string(&new.risks).unwrap_or_default())
        .bind(serde_json::to_string(&new.approvers).unwrap_or_default())
        .bind(new.approvals_required as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.changed(&id).await;
        self.get(&id).await
    }

    /// A request with its reviews and comments.
    pub async fn get(&self, id: &str) -> Result<Request, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let mut r = request_from(&row)?;
        self.fill(&mut r).await?;
        Ok(r)
    }

    async fn fill(&self, r: &mut Request) -> Result<(), StoreError> {
        let reviews = sqlx::query(
            "SELECT reviewer, decision, comment, created_at FROM reviews \
             WHERE request_id = $1 ORDER BY created_at, reviewer",
        )
        .bind(&r.id)
        .fetch_all(&self.pool)
        .await?;
        r.reviews = reviews
            .iter()
            .map(|row| {
                Ok(Review {
                    reviewer: row.try_get("reviewer")?,
                    decision: row.try_get("decision")?,
                    comment: row.try_get("comment")?,
                    time: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let comments = sqlx::query(
            "SELECT author, text, created_at FROM comments WHERE request_id = $1 ORDER BY id",
        )
        .bind(&r.id)
        .fetch_all(&self.pool)
        .await?;
        r.comments = comments
            .iter()
            .map(|row| {
                Ok(Comment {
                    author: row.try_get("author")?,
                    text: row.try_get("text")?,
                    time: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(())
    }

    /// Requests newest first, optionally of one status, after `cursor` (the
    /// `(created_at, id)` of the last item of the previous page; ids break
    /// ties between requests created in the same millisecond), at most
    /// `limit`.
    pub async fn list(
        &self,
        status: Option<Status>,
        cursor: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Request>, StoreError> {
        let (before, before_id) = cursor.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM requests WHERE ($1 = '' OR status = $1) \
             AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(status.map_or("", Status::as_str))
        .bind(before)
        .bind(before_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut r = request_from(row)?;
            self.fill(&mut r).await?;
            out.push(r);
        }
        Ok(out)
    }

    /// Records a review. An approval that brings the request to the number
    /// its rule needs approves it (with a re-run grant until
    /// `grant_expires_at`); one rejection rejects it.
    pub async fn review(
        &self,
        id: &str,
        reviewer: &str,
        approve: bool,
        comment: &str,
        grant_ms: i64,
    ) -> Result<Request, StoreError> {
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT status, approvals_required FROM requests WHERE id = $1{lock}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let status = Status::parse(&row.try_get::<String, _>("status")?).unwrap_or(Status::Expired);
        if status != Status::Pending {
            return Err(StoreError::NotPending {
                id: id.to_string(),
                status,
            });
        }
        let required: i64 = row.try_get("approvals_required")?;
        let seen =
            sqlx::query("SELECT 1 AS x FROM reviews WHERE request_id = $1 AND reviewer = $2")
                .bind(id)
                .bind(reviewer)
                .fetch_optional(&mut *tx)
                .await?;
        if seen.is_some() {
            return Err(StoreError::AlreadyReviewed {
                id: id.to_string(),
                reviewer: reviewer.to_string(),
            });
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO reviews (request_id, reviewer, decision, comment, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(reviewer)
        .bind(if approve { "approve" } else { "reject" })
        .bind(comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if approve {
            let approvals: i64 = sqlx::query(
                "SELECT count(*) AS n FROM reviews WHERE request_id = $1 AND decision = 'approve'",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if approvals >= required {
                sqlx::query(
                    "UPDATE requests SET status = 'approved', decided_at = $2, grant_expires_at = $3 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(now)
                .bind(now + grant_ms)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            sqlx::query(
                "UPDATE requests SET status = 'rejected', decided_at = $2, reason = $3 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(now)
            .bind(comment)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changed(id).await;
        self.get(id).await
    }

    /// Adds a comment to a request.
    pub async fn comment(&self, id: &str, author: &str, text: &str) -> Result<Request, StoreError> {
        self.get(id).await?;
        sqlx::query(
            "INSERT INTO comments (request_id, author, text, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(author)
        .bind(text)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.changed(id).await;
        self.get(id).await
    }

    /// Moves a request from `from` to `to` if it is still `from`; returns
    /// whether it did. Claiming an approval for execution is
    /// `transition(id, Approved, Executed)`: exactly one caller wins.
    pub async fn transition(&self, id: &str, from: Status, to: Status) -> Result<bool, StoreError> {
        let now = now_ms();
        let (decided, executed) = match to {
            Status::Executed => (None, Some(now)),
            _ => (Some(now), None),
        };
        let done = sqlx::query(
            "UPDATE requests SET status = $3, decided_at = COALESCE($4, decided_at), \
             executed_at = COALESCE($5, executed_at) WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(decided)
        .bind(executed)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if done {
            self.changed(id).await;
        }
        Ok(done)
    }

    /// Claims the re-run grant of an approved request for exactly this
    /// statement, if one is live: the request becomes `executed` and is
    /// returned. At most one caller can claim a grant.
    pub async fn claim_grant(&self, new: &NewRequest) -> Result<Option<Request>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM requests WHERE fingerprint = $1 AND status = 'approved' \
             AND grant_expires_at > $2 ORDER BY created_at"
        ))
        .bind(new.fingerprint())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let r = request_from(row)?;
            let same = r.sql == new.sql
                && r.params == new.params
                && r.database == new.database
                && r.requester == new.requester;
            if same
                && self
                    .transition(&r.id, Status::Approved, Status::Executed)
                    .await?
            {
                return Ok(Some(self.get(&r.id).await?));
            }
        }
        Ok(None)
    }

    /// Records what the executed statement did: the rows it affected, or
    /// why PostgreSQL refused it (in `reason`).
    pub async fn set_outcome(
        &self,
        id: &str,
        rows: Option<i64>,
        failure: Option<String>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE requests SET rows_affected = $2, reason = COALESCE($3, reason) WHERE id = $1",
        )
        .bind(id)
        .bind(rows)
        .bind(failure)
        .execute(&self.pool)
        .await?;
        self.changed(id).await;
        Ok(())
    }

    /// Records the planner's row estimate.
    pub async fn set_estimate(&self, id: &str, rows: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE requests SET estimate_rows = $2 WHERE id = $1")
            .bind(id)
            .bind(rows)
            .execute(&self.pool)
            .await?;
        self.changed(id).await;
        Ok(())
    }

    /// Expires pending requests created before `pending_before` and
    /// approvals whose grant has lapsed; returns their ids.
    pub async fn expire(&self, pending_before: i64) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id FROM requests WHERE (status = 'pending' AND created_at < $1) \
             OR (status = 'approved' AND grant_expires_at < $2)",
        )
        .bind(pending_before)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            for from in [Status::Pending, Status::Approved] {
                if self.transition(&id, from, Status::Expired).await? {
                    expired.push(id.clone());
                }
            }
        }
        Ok(expired)
    }

    /// Appends to the audit trail.
    pub async fn audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        self.audit_batch(std::slice::from_ref(e)).await
    }

    /// Appends `events` to the audit trail in one transaction: one commit
    /// (one fsync under SQLite) for all of them.
    pub async fn audit_batch(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in events {
            audit_insert(e).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The audit trail, newest first, before entry `before_id`.
    pub async fn audit_trail(
        &self,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, event, request_id, requester, client_addr, database_name, sql, params, \
             rule, outcome, actor, rows_affected, duration_ms FROM audit WHERE id < $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    event: row.try_get("event")?,
                    request_id: row.try_get("request_id")?,
                    requester: row.try_get("requester")?,
                    client_addr: row.try_get("client_addr")?,
                    database: row.try_get("database_name")?,
                    sql: row.try_get("sql")?,
                    params: json_list(&row.try_get::<String, _>("params")?),
                    rule: row.try_get("rule")?,
                    outcome: row.try_get("outcome")?,
                    actor: row.try_get("actor")?,
                    rows_affected: row.try_get("rows_affected")?,
                    duration_ms: row.try_get("duration_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// The INSERT of one audit event.
fn audit_insert(e: &AuditEvent) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO audit (at, event, request_id, requester, client_addr, database_name, sql, \
             params, rule, outcome, actor, rows_affected, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(if e.at == 0 { now_ms() } else { e.at })
    .bind(&e.event)
    .bind(&e.request_id)
    .bind(&e.requester)
    .bind(&e.client_addr)
    .bind(&e.database)
    .bind(&e.sql)
    .bind(serde_json::to_string(&e.params).unwrap_or_default())
    .bind(&e.rule)
    .bind(&e.outcome)
    .bind(&e.actor)
    .bind(e.rows_affected)
    .bind(e.duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(sql: &str) -> NewRequest {
        NewRequest {
            sql: sql.into(),
            params: vec![Some("1".into()), None],
            database: "app".into(),
            requester: "alice".into(),
            client_addr: "127.0.0.1:5555".into(),
            rule: "writes".into(),
            risks: vec!["no_where".into()],
            approvers: vec!["reviewers".into()],
            approvals_required: 2,
        }
    }

    async fn store() -> Store {
        let path = std::env::temp_dir().join(format!("airlock-store-{}.db", new_id()));
        Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_of_audit_events_lands_whole_and_in_order() {
        let s = store().await;
        let events: Vec<AuditEvent> = (0..300)
            .map(|i| AuditEvent {
                event: "allow".into(),
                sql: format!("INSERT INTO t VALUES ({i})"),
                ..Default::default()
            })
            .collect();
        s.audit_batch(&events).await.unwrap();
        s.audit_batch(&[]).await.unwrap();
        let trail = s.audit_trail(None, 1000).await.unwrap();
        assert_eq!(trail.len(), 300);
        // Newest first.
        assert_eq!(trail[0].sql, "INSERT INTO t VALUES (299)");
        assert_eq!(trail[299].sql, "INSERT INTO t VALUES (0)");
        assert!(trail.iter().all(|e| e.at > 0));
    }

    #[tokio::test]
    async fn two_approvals_then_one_grant() {
        let s = store().await;
        let r = s.create(&new("DELETE FROM t")).await.unwrap();
        assert_eq!(r.status, Status::Pending);
        let r = s.review(&r.id, "bob", true, "ok", 60_000).await.unwrap();
        assert_eq!(r.status, Status::Pending);
        assert!(matches!(
            s.review(&r.id, "bob", true, "again", 60_000).await,
            Err(StoreError::AlreadyReviewed { .. })
        ));
        let r = s
            .review(&r.id, "carol", true, "fine", 60_000)
            .await
            .unwrap();
        assert_eq!(r.status, Status::Approved);
        assert_eq!(r.approvers_so_far(), vec!["bob", "carol"]);
        assert!(s
            .claim_grant(&new("DELETE FROM u"))
            .await
            .unwrap()
            .is_none());
        let claimed = s.claim_grant(&new("DELETE FROM t")).await.unwrap().unwrap();
        assert_eq!(claimed.status, Status::Executed);
        assert!(s
            .claim_grant(&new("DELETE FROM t"))
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            s.review(&r.id, "dave", false, "late", 60_000).await,
            Err(StoreError::NotPending { .. })
        ));
    }

    #[tokio::test]
    async fn one_rejection_ends_it_and_audit_is_append_only() {
        let s = store().await;
        let r = s.create(&new("UPDATE t SET a = 1")).await.unwrap();
        let r = s
            .review(&r.id, "bob", false, "not today", 60_000)
            .await
            .unwrap();
        assert_eq!(r.status, Status::Rejected);
        assert_eq!(r.reason.as_deref(), Some("not today"));
        s.audit(&AuditEvent {
            event: "reject".into(),
            request_id: Some(r.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(s.audit_trail(None, 10).await.unwrap().len(), 1);
        assert!(sqlx::query("DELETE FROM audit")
            .execute(&s.pool)
            .await
            .is_err());
        assert!(matches!(s.get("nope").await, Err(StoreError::NotFound(_))));
    }
}
