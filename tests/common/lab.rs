//! A laboratory for bypass attempts: a schema of its own with rows, a
//! sequence, a volatile function and a procedure that delete, a bystander
//! session and a LISTENing session (all straight to the cluster), and an
//! attacker connected through the proxy under the shipped policy.
//!
//! Under the shipped policy a statement the policy denies is refused at
//! once (42501); one that needs approval is held on the connection until a
//! reviewer decides. The lab runs a reviewer who rejects every request as
//! soon as it appears (and records it), so a held attempt ends in the
//! rejection's 42501 too: either way, it must never have reached the
//! database.
//!
//! Before and after each attempt the lab takes a fingerprint of everything
//! an attempt could change — table contents, the schema's relations,
//! functions and ACLs, sequences, locks and the transaction state of the
//! attacker's backend, large objects, files the server could write, the
//! bystander's life and query, the attacker's role and read-only default —
//! and checks that no notification was delivered. Failures are collected
//! rather than raised at once, so that one run lists every attempt that got
//! through.
//!
//! [`raw`] adds the lab's attacker over the raw protocol.

pub mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

use super::approval::{proxy_with, ALICE};
use super::http::call;
use super::*;

pub const DB: &str = "airlock_test";

/// What an attempt must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// ErrorResponse 42501 from the proxy.
    Refused,
    /// 42501, or 42601 where PostgreSQL itself rejects the text first (a
    /// multi-statement string in the extended protocol).
    RefusedOrSyntax,
    /// 42601.
    Syntax,
    /// Runs (a read): succeeds and changes nothing.
    Allowed,
    /// 42501, or 25006 where the read-only backstop stopped what the
    /// classifier could not see (a write in user code behind read syntax).
    RefusedOrReadOnly,
}

impl Expect {
    fn accepts(self, code: &str) -> bool {
        match self {
            Expect::Refused => code == "42501",
            Expect::RefusedOrSyntax => code == "42501" || code == "42601",
            Expect::Syntax => code == "42601",
            Expect::RefusedOrReadOnly => code == "42501" || code == "25006",
            Expect::Allowed => false,
        }
    }
}

/// A fingerprint of everything an attempt could change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub relations: Vec<String>,
    pub functions: Vec<String>,
    pub tables: Vec<String>,
    pub sequences: Vec<String>,
    pub attacker_backend: Vec<String>,
    pub attacker_locks: Vec<String>,
    pub large_objects: i64,
    pub bystander: Vec<String>,
    pub files: Vec<String>,
    pub attacker_session: Vec<String>,
}

pub struct Lab {
    pub rejecter: Rejecter,
    pub proxy: TestProxy,
    pub db: String,
    pub schema: String,
    pub chan: String,
    /// A role the attacker could switch to.
    pub other_role: String,
    /// Paths an attempt might make the server write.
    pub prog_file: PathBuf,
    pub copy_file: PathBuf,
    pub admin: Client,
    pub bystander: Client,
    pub bystander_pid: i32,
    pub listener: Client,
    notes: mpsc::UnboundedReceiver<AsyncMessage>,
    pub attacker: Client,
    pub attacker_pid: i32,
    /// Further backends whose locks and transaction state count (raw
    /// attackers).
    pub extra_pids: Vec<i32>,
    pub failures: Vec<String>,
    pub attempts: usize,
    seen_holds: usize,
}

/// The error code of a tokio-postgres error, or its text.
pub fn code_of(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(c) => c.code().to_string(),
        None => format!("no SQLSTATE ({e})"),
    }
}

/// A direct connection whose asynchronous messages go to a channel.
pub async fn connect_with_messages(
    conninfo: &str,
) -> (Client, mpsc::UnboundedReceiver<AsyncMessage>) {
    let (client, mut connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            let _ = tx.send(m);
        }
    });
    (client, rx)
}

/// The shipped policy's proxy with the test reviewers and a short shutdown
/// grace.
pub fn shipped_proxy() -> TestProxy {
    proxy_with(|c| c.shutdown_timeout = Duration::from_secs(2))
}

/// A reviewer who rejects every pending request of one proxy as soon as it
/// appears, and remembers the SQL of each.
pub struct Rejecter {
    stop: Arc<AtomicBool>,
    pub held: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Rejecter {
    pub fn start(admin: SocketAddr) -> Rejecter {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            let held = Arc::clone(&held);
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = call(
                        admin,
                        "GET",
                        "/api/v1/requests?status=pending",
                        Some(ALICE),
                        None,
                    );
                    assert_eq!(status, 200, "list requests: {body}");
                    for r in body["items"].as_array().into_iter().flatten() {
                        let id = r["id"].as_str().unwrap_or_default();
                        // Counted before the reject call: the held client
                        // may hear of the rejection before this thread
                        // hears the call's response.
                        held.lock()
                            .unwrap()
                            .push(r["sql"].as_str().unwrap_or_default().to_string());
                        let reason = r#"{"reason": "bypass attempt"}"#;
                        let path = format!("/api/v1/requests/{id}/reject");
                        let (status, body) = call(admin, "POST", &path, Some(ALICE), Some(reason));
                        // 409: decided meanwhile (withdrawn, say).
                        assert!(
                            status == 200 || status == 409,
                            "reject {id}: {status} {body}"
                        );
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
        });
        Rejecter {
            stop,
            held,
            thread: Some(thread),
        }
    }

    /// How many requests were held and rejected so far.
    pub fn count(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Rejecter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The first column of every row of a simple-query result.
pub fn first_column(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect()
}

/// How attackers connect: through the proxy, as the superuser (so that
/// anything that gets through really can do harm), with the lab's schema
/// on the search path.
pub fn attacker_conninfo(proxy: &TestProxy, db: &str, schema: &str, app: &str) -> String {
    format!(
        "{} application_name={app} options='-c search_path={schema}'",
        proxy.conninfo("postgres", db)
    )
}

impl Lab {
    /// Another attacker session through the proxy.
    pub async fn connect_attacker(&self) -> Client {
        connect(&attacker_conninfo(
            &self.proxy,
            &self.db,
            &self.schema,
            &format!("{}_second", self.schema),
        ))
        .await
    }

    pub async fn new() -> Lab {
        Self::with_proxy(shipped_proxy()).await
    }

    pub async fn with_proxy(proxy: TestProxy) -> Lab {
        Self::in_database(proxy, DB).await
    }

    /// A lab in database `db` (which exists).
    pub async fn in_database(proxy: TestProxy, db: &str) -> Lab {
        let schema = unique("bp");
        let chan = format!("{schema}_chan");
        let other_role = format!("{schema}_other");
        let admin = connect(&direct_conninfo("postgres", db)).await;
        let s = &schema;
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {s};
                 CREATE ROLE {other_role} NOLOGIN;
                 CREATE TABLE {s}.victim (id int PRIMARY KEY, v text NOT NULL);
                 INSERT INTO {s}.victim SELECT g, 'row ' || g FROM generate_series(1, 20) g;
                 CREATE TABLE {s}.ledger (id bigserial PRIMARY KEY, amount numeric NOT NULL);
                 INSERT INTO {s}.ledger (amount) SELECT g * 1.5 FROM generate_series(1, 10) g;
                 CREATE SEQUENCE {s}.seq;
                 SELECT nextval('{s}.seq');
                 CREATE FUNCTION {s}.evil() RETURNS int VOLATILE LANGUAGE plpgsql AS
                     $$ BEGIN DELETE FROM {s}.victim; RETURN 1; END $$;
                 CREATE PROCEDURE {s}.proc() LANGUAGE plpgsql AS
                     $$ BEGIN DELETE FROM {s}.victim; END $$;"
            ))
            .await
            .expect("lab setup");
        let bystander = connect(&direct_conninfo("postgres", db)).await;
        let bystander_pid: i32 = bystander
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let (listener, notes) = connect_with_messages(&direct_conninfo("postgres", db)).await;
        listener
            .batch_execute(&format!("LISTEN {chan}"))
            .await
            .unwrap();
        let app = format!("{schema}_attacker");
        let attacker = connect(&attacker_conninfo(&proxy, db, &schema, &app)).await;
        let attacker_pid: i32 = admin
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .expect("the attacker's backend")
            .get(0);
        let tmp = std::env::temp_dir();
        Lab {
            rejecter: Rejecter::start(proxy.admin),
            prog_file: tmp.join(format!("airlock_{schema}_program")),
            copy_file: tmp.join(format!("airlock_{schema}_copy")),
            proxy,
            db: db.to_string(),
            schema,
            chan,
            other_role,
            admin,
            bystander,
            bystander_pid,
            listener,
            notes,
            attacker,
            attacker_pid,
            extra_pids: Vec::new(),
            failures: Vec::new(),
            attempts: 0,
            seen_holds: 0,
        }
    }

    /// `sql` with `{pid}` (the bystander's), `{chan}`, `{prog}`, `{file}`,
    /// `{other}` (a role) and `{s}` (the schema) filled in.
    pub fn fill(&self, sql: &str) -> String {
        sql.replace("{pid}", &self.bystander_pid.to_string())
            .replace("{chan}", &self.chan)
            .replace("{prog}", &self.prog_file.to_string_lossy())
            .replace("{file}", &self.copy_file.to_string_lossy())
            .replace("{other}", &self.other_role)
            .replace("{s}", &self.schema)
    }

    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<String> {
        self.admin
            .query(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    pub async fn fingerprint(&self) -> Fingerprint {
        let s = &self.schema;
        let mut pids = vec![self.attacker_pid];
        pids.extend(&self.extra_pids);
        let mut attacker_session = Vec::new();
        // The attacker's session first: its round trip also waits out
        // anything the client sent on its own (tokio-postgres closes
        // statements it no longer needs), so that its backend is idle when
        // we look at it. SHOW first: a read afterwards might make the
        // proxy reset the read-only default before we look.
        for sql in [
            "SHOW default_transaction_read_only",
            "SELECT current_user::text || '/' || session_user::text",
        ] {
            match self.attacker.simple_query(sql).await {
                Ok(m) => attacker_session.extend(first_column(&m)),
                Err(e) => attacker_session.push(format!("{sql}: {e}")),
            }
        }
        let relations = self
            .rows(
                "SELECT c.relname || ':' || c.relkind::text || ':' || coalesce(c.relacl::text, '-')
                 || ':' || c.relpersistence::text
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 ORDER BY 1",
                &[s],
            )
            .await;
        let functions = self
            .rows(
                "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || '):'
                 || md5(p.prosrc) || ':' || p.provolatile::text
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = $1 ORDER BY 1",
                &[s],
            )
            .await;
        let mut tables = Vec::new();
        for t in self
            .rows(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[s],
            )
            .await
        {
            tables.extend(
                self.rows(
                    &format!(
                        "SELECT '{t}:' || count(*) || ':'
                         || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '')
                         FROM {s}.{t} x"
                    ),
                    &[],
                )
                .await,
            );
        }
        let mut sequences = Vec::new();
        for q in self
            .rows(
                "SELECT sequencename::text FROM pg_sequences WHERE schemaname = $1 ORDER BY 1",
                &[s],
            )
            .await
        {
            sequences.extend(
                self.rows(
                    &format!("SELECT '{q}:' || last_value || ':' || is_called FROM {s}.{q}"),
                    &[],
                )
                .await,
            );
        }
        let attacker_backend = self
            .rows(
                "SELECT pid || ':' || coalesce(state, '?') || ':' || (xact_start IS NULL)::text
                 FROM pg_stat_activity WHERE pid = ANY($1) ORDER BY 1",
                &[&pids],
            )
            .await;
        let attacker_locks = self
            .rows(
                "SELECT pid || ':' || locktype || ':' || mode || ':' || granted::text || ':'
                 || coalesce(relation::regclass::text, classid::text || '/' || objid::text
                    || '/' || objsubid::text, '')
                 FROM pg_locks WHERE pid = ANY($1) ORDER BY 1",
                &[&pids],
            )
            .await;
        let large_objects: i64 = self
            .admin
            .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
            .await
            .unwrap()
            .get(0);
        let mut bystander = self
            .rows(
                "SELECT coalesce(state, '?') || ':' || backend_start::text
                 FROM pg_stat_activity WHERE pid = $1",
                &[&self.bystander_pid],
            )
            .await;
        // A terminated backend may linger in the view for a moment; the
        // bystander's own connection tells for sure.
        match self.bystander.simple_query("SELECT 1").await {
            Ok(_) => bystander.push("answers".into()),
            Err(e) => bystander.push(format!("broken: {e}")),
        }
        let files = [&self.prog_file, &self.copy_file]
            .iter()
            .map(|p| format!("{}:{}", p.display(), p.exists()))
            .collect();
        Fingerprint {
            relations,
            functions,
            tables,
            sequences,
            attacker_backend,
            attacker_locks,
            large_objects,
            bystander,
            files,
            attacker_session,
        }
    }

    /// Notifications delivered to the listener since the last call.
    pub async fn notifications(&mut self) -> Vec<String> {
        // A round trip: a notification committed before it has been sent
        // to the idle listener by the time the answer comes.
        self.listener.simple_query("SELECT 1").await.unwrap();
        let mut got = Vec::new();
        while let Ok(m) = self.notes.try_recv() {
            if let AsyncMessage::Notification(n) = m {
                got.push(format!("{}: {:?}", n.channel(), n.payload()));
            }
        }
        got
    }

    pub fn fail(&mut self, what: String) {
        eprintln!("BYPASS/FAILURE: {what}");
        self.failures.push(what);
    }

    /// Compares the state after an attempt with `before`, checks that no
    /// notification came and that the session still answers.
    pub async fn check_after(&mut self, label: &str, before: &Fingerprint) {
        let after = self.fingerprint().await;
        if &after != before {
            self.fail(format!(
                "{label}: the database changed\n  before: {before:?}\n  after:  {after:?}"
            ));
        }
        let notes = self.notifications().await;
        if !notes.is_empty() {
            self.fail(format!("{label}: notifications were delivered: {notes:?}"));
        }
        match self.attacker.simple_query("SELECT 1").await {
            Ok(m) if first_column(&m) == ["1"] => {}
            other => self.fail(format!("{label}: session unusable (simple): {other:?}")),
        }
        match self.attacker.query_one("SELECT 1::int4", &[]).await {
            Ok(r) if r.get::<_, i32>(0) == 1 => {}
            other => self.fail(format!("{label}: session unusable (extended): {other:?}")),
        }
    }

    /// Judges a result against `expect`.
    pub fn judge<T: std::fmt::Debug>(
        &mut self,
        label: &str,
        expect: Expect,
        result: Result<T, tokio_postgres::Error>,
    ) {
        let outcome = result
            .map(|v| format!("{v:?}"))
            .map_err(|e| (code_of(&e), e.to_string()));
        self.judge_code(label, expect, outcome);
    }

    /// Judges an outcome: what ran, or the SQLSTATE and message of the
    /// error.
    pub fn judge_code(
        &mut self,
        label: &str,
        expect: Expect,
        outcome: Result<String, (String, String)>,
    ) {
        match (expect, outcome) {
            (Expect::Allowed, Ok(_)) => {}
            (Expect::Allowed, Err((code, e))) => self.fail(format!("{label}: refused: {code} {e}")),
            (_, Ok(v)) => self.fail(format!("{label}: RAN: {v}")),
            (_, Err((code, e))) => {
                if !expect.accepts(&code) {
                    self.fail(format!("{label}: expected {expect:?}, got {code}: {e}"));
                }
            }
        }
    }

    /// `label`, marked if a request was held (and rejected) since the last
    /// call.
    pub fn held_label(&mut self, label: String) -> String {
        let n = self.rejecter.count();
        let held = n > self.seen_holds;
        self.seen_holds = n;
        if held {
            format!("{label} (held, rejected)")
        } else {
            label
        }
    }

    /// One attempt in the simple query protocol.
    pub async fn simple(&mut self, sql: &str, expect: Expect) {
        let sql = self.fill(sql);
        let label = format!("[simple] {sql}");
        let before = self.fingerprint().await;
        let r = self
            .attacker
            .simple_query(&sql)
            .await
            .map(|m| first_column(&m));
        self.judge(&label, expect, r);
        self.check_after(&label, &before).await;
        self.attempts += 1;
    }

    /// One attempt in the simple query protocol inside an explicit
    /// transaction block (`BEGIN` ... `COMMIT`), where the read-only
    /// backstop does not apply (docs/backstop.md).
    pub async fn in_block(&mut self, sql: &str, expect: Expect) {
        let sql = self.fill(sql);
        let label = format!("[BEGIN; ...; COMMIT] {sql}");
        let before = self.fingerprint().await;
        self.attacker.batch_execute("BEGIN").await.unwrap();
        let r = self
            .attacker
            .simple_query(&sql)
            .await
            .map(|m| first_column(&m));
        let label = self.held_label(label);
        self.judge(&label, expect, r);
        // A COMMIT of a failed block is answered as a ROLLBACK.
        if let Err(e) = self.attacker.batch_execute("COMMIT").await {
            self.fail(format!("{label}: COMMIT: {e}"));
            let _ = self.attacker.batch_execute("ROLLBACK").await;
        }
        self.check_after(&label, &before).await;
        self.attempts += 1;
    }

    /// One attempt in the extended protocol: Parse/Describe/Sync, then
    /// Bind/Execute/Sync with `params`.
    pub async fn extended(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)], expect: Expect) {
        let sql = self.fill(sql);
        let label = format!("[extended, {} params] {sql}", params.len());
        let before = self.fingerprint().await;
        let r = self
            .attacker
            .query(&sql, params)
            .await
            .map(|rows| rows.len());
        self.judge(&label, expect, r);
        self.check_after(&label, &before).await;
        self.attempts += 1;
    }

    /// One attempt as prepare, then execute: where approval is needed the
    /// prepare itself succeeds and the execution is refused.
    pub async fn prepared(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)], expect: Expect) {
        let sql = self.fill(sql);
        let label = format!("[prepare+execute] {sql}");
        let before = self.fingerprint().await;
        let r = match self.attacker.prepare(&sql).await {
            Ok(st) => self.attacker.execute(&st, params).await,
            Err(e) => Err(e),
        };
        let label = self.held_label(label);
        self.judge(&label, expect, r);
        self.check_after(&label, &before).await;
        self.attempts += 1;
    }

    /// Asserts that no attempt got through.
    pub fn finish(self) {
        eprintln!(
            "{} attempts, {} of them held and rejected",
            self.attempts,
            self.rejecter.count()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} attempts were not refused cleanly or changed something:\n\n{}",
            self.failures.len(),
            self.attempts,
            self.failures.join("\n\n")
        );
        assert!(self.attempts > 0);
    }
}
