-- airlock's own state: approval requests, their reviews and comments, and
-- the append-only audit trail. Times are Unix milliseconds. Never edit a
-- migration once released; add a new one.

CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    status             TEXT NOT NULL,      -- pending approved rejected cancelled expired executed
    sql                TEXT NOT NULL,
    params             TEXT NOT NULL,      -- JSON array of decoded bound parameters
    fingerprint        TEXT NOT NULL,      -- requester, database, SQL and parameters
    database_name      TEXT NOT NULL,
    requester          TEXT NOT NULL,
    client_addr        TEXT NOT NULL,
    rule               TEXT NOT NULL,
    risks              TEXT NOT NULL,      -- JSON array
    approvers          TEXT NOT NULL,      -- JSON array of groups that may approve
    approvals_required INTEGER NOT NULL,
    estimate_rows      BIGINT,
    created_at         BIGINT NOT NULL,
    decided_at         BIGINT,
    grant_expires_at   BIGINT,
    executed_at        BIGINT,
    rows_affected      BIGINT,
    reason             TEXT
);
CREATE INDEX requests_by_status ON requests (status, created_at);
CREATE INDEX requests_by_fingerprint ON requests (fingerprint, status);

CREATE TABLE reviews (
    request_id TEXT NOT NULL REFERENCES requests (id),
    reviewer   TEXT NOT NULL,
    decision   TEXT NOT NULL,              -- approve reject
    comment    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, reviewer)
);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests (id),
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            BIGINT NOT NULL,
    event         TEXT NOT NULL,           -- allow deny hold approve reject cancel expire execute
    request_id    TEXT,
    requester     TEXT NOT NULL,
    client_addr   TEXT NOT NULL,
    database_name TEXT NOT NULL,
    sql           TEXT NOT NULL,
    params        TEXT NOT NULL,
    rule          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    actor         TEXT,
    rows_affected BIGINT,
    duration_ms   BIGINT
);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
