//! Attacks that plant objects straight in PostgreSQL, past the proxy, as a
//! superuser would, and then send statements that parse as reads (issue
//! 10). Each attack gets a database of its own, cloned from a template with
//! dblink, a marker table that planted code writes to, a victim table of
//! five rows and two helpers:
//!
//! - `public.hit(tag)` inserts a marker row through a dblink loopback
//!   connection to the cluster, so the write escapes the read-only backstop;
//! - `public.local_hit(tag)` inserts it in the caller's own transaction
//!   (enough inside BEGIN ... COMMIT, where there is no backstop).
//!
//! Both do nothing unless the session's application_name is `bp_attacker`
//! (the attacker's, straight or through the proxy): planted casts and
//! operator classes affect every statement of their database, the proxy's
//! own catalog reads and this harness's included, and only the attacker's
//! statements are under test here.
//!
//! Every attack runs twice on its database: first straight to PostgreSQL
//! (the positive control: it must change the database, or the attack is
//! broken rather than blocked), then through the proxy under the shipped
//! policy with a reviewer who rejects every hold. Through the proxy the
//! database must not change and the client must get an error (42501, or
//! 08P01 for a malformed message, or a FATAL at startup), never rows.
//! Failures are collected, each naming its attack, and reported together.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::common::lab::{code_of, first_column, shipped_proxy, Rejecter};
use crate::common::rawpg::{first_error, Msg, Read1, Wire};
use crate::common::*;

/// What the helpers and the marker look like in every attack database.
fn template_sql(port: u16) -> String {
    format!(
        "CREATE EXTENSION dblink;
         CREATE TABLE public.marker (id serial PRIMARY KEY, tag text NOT NULL);
         CREATE TABLE public.victim (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO public.victim SELECT g, 'row ' || g FROM generate_series(1, 5) g;
         CREATE FUNCTION public.armed() RETURNS boolean STABLE LANGUAGE sql AS
             $f$ SELECT pg_catalog.current_setting('application_name')
                 OPERATOR(pg_catalog.=) '{ATTACKER_APP}' $f$;
         CREATE FUNCTION public.hit(tag text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $f$
         BEGIN
             IF NOT public.armed() THEN RETURN true; END IF;
             PERFORM public.dblink_exec(
                 'host=127.0.0.1 port={port} user=postgres dbname='
                     OPERATOR(pg_catalog.||) pg_catalog.current_database()::pg_catalog.text,
                 'INSERT INTO public.marker (tag) VALUES ('
                     OPERATOR(pg_catalog.||) pg_catalog.quote_literal(tag)
                     OPERATOR(pg_catalog.||) ')');
             RETURN true;
         END $f$;
         CREATE FUNCTION public.local_hit(tag text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $f$
         BEGIN
             IF NOT public.armed() THEN RETURN true; END IF;
             INSERT INTO public.marker (tag) VALUES (tag);
             RETURN true;
         END $f$;"
    )
}

/// The attacker's application_name, which arms the helpers.
pub const ATTACKER_APP: &str = "bp_attacker";

/// The template database of this test binary, made on first use.
pub fn template() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let name = format!("bp_template_{}", std::process::id());
        let port = pg().port;
        stdout_ok(&psql(
            port,
            "postgres",
            "postgres",
            &["-c", &format!("CREATE DATABASE {name}")],
        ));
        stdout_ok(&psql(port, "postgres", &name, &["-c", &template_sql(port)]));
        name
    })
}

/// The direct cluster's address.
pub fn direct_addr() -> SocketAddr {
    format!("127.0.0.1:{}", pg().port).parse().unwrap()
}

/// What an attack could change: marker rows and the victim's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub marker: i64,
    pub victim: i64,
    pub victim_md5: String,
}

/// A database of one attack's own, cloned from the template.
pub struct Fresh {
    pub name: String,
    pub admin: Client,
}

impl Fresh {
    pub async fn new() -> Fresh {
        let tpl = template();
        let name = unique("bpdb");
        let pg = connect(&direct_conninfo("postgres", "postgres")).await;
        pg.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {tpl}"))
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e:?}"));
        let admin = connect(&direct_conninfo("postgres", &name)).await;
        Fresh { name, admin }
    }

    pub async fn state(&self) -> State {
        let r = self
            .admin
            .query_one(
                "SELECT (SELECT count(*) FROM public.marker),
                        (SELECT count(*) FROM public.victim),
                        (SELECT coalesce(md5(string_agg(id::text || v, ',' ORDER BY id)), '')
                         FROM public.victim)",
                &[],
            )
            .await
            .expect("state");
        State {
            marker: r.get(0),
            victim: r.get(1),
            victim_md5: r.get(2),
        }
    }

    /// `sql` with `{db}` (this database) and `{port}` (the cluster's)
    /// filled in.
    pub fn fill(&self, sql: &str) -> String {
        sql.replace("{db}", &self.name)
            .replace("{port}", &pg().port.to_string())
    }

    /// Puts back the victim's rows (after a control deleted them).
    pub async fn restore_victim(&self) {
        self.admin
            .batch_execute(
                "DELETE FROM public.victim;
                 INSERT INTO public.victim
                     SELECT g, 'row ' OPERATOR(pg_catalog.||) g::pg_catalog.text
                     FROM generate_series(1, 5) g;",
            )
            .await
            .expect("restore the victim");
    }

    pub async fn plant(&self, sql: &str) -> Result<(), String> {
        let sql = self.fill(sql);
        self.admin
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("planting failed: {}: {sql}", message(&e)))
    }

    pub async fn drop(self) {
        let Fresh { name, admin } = self;
        drop(admin);
        let pg = connect(&direct_conninfo("postgres", "postgres")).await;
        if let Err(e) = pg
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
        {
            eprintln!("drop database {name}: {e:?}");
        }
    }
}

/// The message of a tokio-postgres error.
pub fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// One message of an attack over tokio-postgres.
#[derive(Debug, Clone)]
pub enum Step {
    Simple(String),
    Extended(String),
    /// COPY ... TO STDOUT, read to its end.
    CopyOut(String),
}

/// An attack over tokio-postgres: objects planted as the superuser, then
/// statements sent by the client, inside BEGIN ... COMMIT or not.
#[derive(Debug, Clone)]
pub struct Attack {
    pub label: String,
    pub plant: String,
    /// Extra libpq-style connection parameters of the attacker.
    pub conn: String,
    pub steps: Vec<Step>,
    pub block: bool,
}

impl Attack {
    pub fn new(label: &str, plant: &str) -> Attack {
        Attack {
            label: label.to_string(),
            plant: plant.to_string(),
            conn: String::new(),
            steps: Vec::new(),
            block: false,
        }
    }

    pub fn simple(mut self, sql: &str) -> Attack {
        self.steps.push(Step::Simple(sql.to_string()));
        self
    }

    pub fn extended(mut self, sql: &str) -> Attack {
        self.steps.push(Step::Extended(sql.to_string()));
        self
    }

    pub fn copy_out(mut self, sql: &str) -> Attack {
        self.steps.push(Step::CopyOut(sql.to_string()));
        self
    }

    pub fn in_block(mut self) -> Attack {
        self.block = true;
        self
    }

    pub fn conn(mut self, extra: &str) -> Attack {
        self.conn = extra.to_string();
        self
    }

    fn title(&self) -> String {
        let how: Vec<&str> = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Simple(_) => "simple",
                Step::Extended(_) => "extended",
                Step::CopyOut(_) => "copy out",
            })
            .collect();
        format!(
            "{} [{}{}]",
            self.label,
            how.join("+"),
            if self.block { ", in BEGIN" } else { "" }
        )
    }
}

/// Plays the steps of `a` on `client`: the results, or the first error.
async fn play(client: &Client, a: &Attack, fresh: &Fresh) -> Result<String, (String, String)> {
    let mut out = Vec::new();
    let mut result = Ok(());
    if a.block {
        client.batch_execute("BEGIN").await.expect("BEGIN");
    }
    for step in &a.steps {
        let r = match step {
            Step::Simple(sql) => client
                .simple_query(&fresh.fill(sql))
                .await
                .map(|m| format!("{:?}", first_column(&m))),
            Step::Extended(sql) => client
                .query(fresh.fill(sql).as_str(), &[])
                .await
                .map(|rows| format!("{} rows", rows.len())),
            Step::CopyOut(sql) => copy_out(client, &fresh.fill(sql)).await,
        };
        match r {
            Ok(s) => out.push(s),
            Err(e) => {
                result = Err((code_of(&e), message(&e)));
                break;
            }
        }
    }
    if a.block && client.batch_execute("COMMIT").await.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result.map(|_| out.join("; "))
}

async fn copy_out(client: &Client, sql: &str) -> Result<String, tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let stream = client.copy_out(sql).await?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(format!(
        "{} bytes copied",
        chunks.iter().map(|c| c.len()).sum::<usize>()
    ))
}

/// One raw step: bytes to send and how many ReadyForQuery end its answer.
#[derive(Debug, Clone)]
pub struct RawStep {
    pub bytes: Vec<u8>,
    pub ready: usize,
    /// Sent only through the proxy: a message the proxy refuses, which the
    /// server would never see (the control leaves it out).
    pub proxy_only: bool,
    /// The step whose answer is judged.
    pub attack: bool,
}

/// An attack at wire level: a startup packet and raw steps.
#[derive(Debug, Clone)]
pub struct RawAttack {
    pub label: String,
    pub plant: String,
    /// Planted in a second (decoy) database, if any.
    pub decoy: Option<String>,
    /// Startup parameters; `{db}` and `{decoy}` are filled in.
    pub startup: Vec<(String, String)>,
    pub steps: Vec<RawStep>,
}

impl RawAttack {
    pub fn new(label: &str, plant: &str) -> RawAttack {
        RawAttack {
            label: label.to_string(),
            plant: plant.to_string(),
            decoy: None,
            startup: vec![
                ("user".into(), "postgres".into()),
                ("database".into(), "{db}".into()),
                ("application_name".into(), ATTACKER_APP.into()),
            ],
            steps: Vec::new(),
        }
    }

    pub fn startup(mut self, params: &[(&str, &str)]) -> RawAttack {
        self.startup = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    pub fn decoy(mut self, plant: &str) -> RawAttack {
        self.decoy = Some(plant.to_string());
        self
    }

    /// A step that sets things up (its answer is not judged).
    pub fn then(mut self, bytes: Vec<u8>, ready: usize) -> RawAttack {
        self.steps.push(RawStep {
            bytes,
            ready,
            proxy_only: false,
            attack: false,
        });
        self
    }

    /// A step sent only through the proxy.
    pub fn proxy_only(mut self, bytes: Vec<u8>, ready: usize) -> RawAttack {
        self.steps.push(RawStep {
            bytes,
            ready,
            proxy_only: true,
            attack: false,
        });
        self
    }

    /// The step that must be refused.
    pub fn attack(mut self, bytes: Vec<u8>, ready: usize) -> RawAttack {
        self.steps.push(RawStep {
            bytes,
            ready,
            proxy_only: false,
            attack: true,
        });
        self
    }
}

/// What a raw session came to.
#[derive(Debug, Default)]
struct RawOutcome {
    startup: Vec<Msg>,
    /// Messages of the judged steps.
    judged: Vec<Msg>,
    /// Every message, for the report.
    all: Vec<Msg>,
    closed: bool,
}

/// Message tags, with the code and text of errors and command tags.
pub fn summary(msgs: &[Msg]) -> String {
    msgs.iter()
        .filter(|m| {
            !matches!(
                m.tag,
                b'S' | b'K' | b'R' | b'1' | b'2' | b'3' | b'T' | b'n' | b't'
            )
        })
        .map(|m| match m.tag {
            b'E' | b'N' => format!(
                "{}({} {})",
                m.tag as char,
                m.code().unwrap_or_default(),
                m.field(b'M').unwrap_or_default()
            ),
            b'C' => format!(
                "C({})",
                String::from_utf8_lossy(&m.body).trim_end_matches('\0')
            ),
            b'Z' => format!("Z{}", m.body.first().map(|&b| b as char).unwrap_or('?')),
            t => (t as char).to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn play_raw(addr: SocketAddr, a: &RawAttack, db: &str, decoy: &str, through: bool) -> RawOutcome {
    let mut out = RawOutcome::default();
    let mut w = Wire::connect(addr);
    let params: Vec<(String, String)> = a
        .startup
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{db}", db).replace("{decoy}", decoy)))
        .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    out.startup = w.startup(&refs);
    if first_error(&out.startup).is_some() {
        out.closed = true;
        return out;
    }
    for step in &a.steps {
        if step.proxy_only && !through {
            continue;
        }
        use std::io::Write;
        if w.stream.write_all(&step.bytes).is_err() {
            out.closed = true;
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while seen < step.ready {
            match w.read(deadline) {
                Read1::Msg(m) => {
                    seen += usize::from(m.tag == b'Z');
                    if step.attack {
                        out.judged.push(m.clone());
                    }
                    out.all.push(m);
                }
                Read1::Closed => {
                    out.closed = true;
                    return out;
                }
                Read1::TimedOut => {
                    out.all.push(Msg {
                        tag: b'?',
                        body: b"timed out".to_vec(),
                    });
                    return out;
                }
            }
        }
    }
    let _ = std::io::Write::write_all(&mut w.stream, &crate::common::rawpg::terminate());
    out
}

/// Runs attacks and collects what got through.
pub struct Arena {
    // The reviewer first: it stops before the proxy it polls goes away.
    pub rejecter: Rejecter,
    pub proxy: TestProxy,
    pub failures: Vec<String>,
    pub attempts: usize,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub fn new() -> Arena {
        let proxy = shipped_proxy();
        let rejecter = Rejecter::start(proxy.admin);
        Arena {
            proxy,
            rejecter,
            failures: Vec::new(),
            attempts: 0,
        }
    }

    pub fn fail(&mut self, what: String) {
        eprintln!("BYPASS/FAILURE: {what}");
        self.failures.push(what);
    }

    fn conninfo_proxy(&self, db: &str, extra: &str) -> String {
        format!(
            "{} application_name={ATTACKER_APP} {extra}",
            self.proxy.conninfo("postgres", db)
        )
    }

    /// Runs one attack: the control straight to PostgreSQL, then the same
    /// through the proxy.
    pub async fn run(&mut self, a: Attack) {
        let title = a.title();
        self.attempts += 1;
        let fresh = Fresh::new().await;
        if let Err(e) = fresh.plant(&a.plant).await {
            self.fail(format!("CONTROL BROKEN {title}: {e}"));
            fresh.drop().await;
            return;
        }
        // The positive control.
        let before = fresh.state().await;
        let direct = connect(&format!(
            "{} application_name={ATTACKER_APP} {}",
            direct_conninfo("postgres", &fresh.name),
            a.conn
        ))
        .await;
        let control = play(&direct, &a, &fresh).await;
        drop(direct);
        let after = fresh.state().await;
        if after == before {
            self.fail(format!(
                "CONTROL BROKEN {title}: straight to PostgreSQL it changed nothing \
                 ({before:?}); it got {control:?}"
            ));
            fresh.drop().await;
            return;
        }
        eprintln!("control {title}: {before:?} -> {after:?} ({control:?})");
        fresh.restore_victim().await;
        // Through the proxy.
        let attacker = connect(&self.conninfo_proxy(&fresh.name, &a.conn)).await;
        self.proxy
            .catalog_caught_up(&fresh.admin, &fresh.name)
            .await;
        let before = fresh.state().await;
        let holds = self.rejecter.count();
        let got = play(&attacker, &a, &fresh).await;
        let after = fresh.state().await;
        let held = self.rejecter.count() > holds;
        drop(attacker);
        let how = if held { " (held, rejected)" } else { "" };
        if after != before {
            self.fail(format!(
                "LEAK {title}: through airlock the database changed{how}: \
                 {before:?} -> {after:?}; the client got {got:?}"
            ));
        } else {
            match got {
                Ok(v) => self.fail(format!(
                    "LEAK {title}: through airlock it ran as a read{how}: {v}"
                )),
                Err((code, m)) if code != "42501" => self.fail(format!(
                    "{title}: through airlock expected 42501, got {code}{how}: {m}"
                )),
                Err(_) => eprintln!("blocked {title}{how}"),
            }
        }
        fresh.drop().await;
    }

    /// Runs one raw attack: the control straight to PostgreSQL, then the
    /// same bytes through the proxy.
    pub async fn run_raw(&mut self, a: RawAttack) {
        let title = a.label.clone();
        self.attempts += 1;
        let fresh = Fresh::new().await;
        let decoy = match &a.decoy {
            Some(p) => {
                let d = Fresh::new().await;
                if let Err(e) = d.plant(p).await {
                    self.fail(format!("CONTROL BROKEN {title}: decoy: {e}"));
                }
                Some(d)
            }
            None => None,
        };
        let decoy_name = decoy.as_ref().map(|d| d.name.clone()).unwrap_or_default();
        if let Err(e) = fresh.plant(&a.plant).await {
            self.fail(format!("CONTROL BROKEN {title}: {e}"));
        } else {
            self.raw_legs(&a, &fresh, &decoy_name, decoy.as_ref()).await;
        }
        if let Some(d) = decoy {
            d.drop().await;
        }
        fresh.drop().await;
    }

    async fn raw_legs(
        &mut self,
        a: &RawAttack,
        fresh: &Fresh,
        decoy_name: &str,
        decoy: Option<&Fresh>,
    ) {
        let title = &a.label;
        let before = fresh.state().await;
        let (name, dn, aa) = (fresh.name.clone(), decoy_name.to_string(), a.clone());
        let control =
            tokio::task::spawn_blocking(move || play_raw(direct_addr(), &aa, &name, &dn, false))
                .await
                .unwrap();
        let after = fresh.state().await;
        if after == before {
            self.fail(format!(
                "CONTROL BROKEN {title}: straight to PostgreSQL it changed nothing \
                 ({before:?}); it got {:?} {:?}",
                control.startup, control.all
            ));
            return;
        }
        eprintln!("control {title}: {before:?} -> {after:?}");
        fresh.restore_victim().await;
        // Warm the proxy's catalogs of both databases.
        let warm = self.proxy.connect("postgres", &fresh.name).await;
        self.proxy
            .catalog_caught_up(&fresh.admin, &fresh.name)
            .await;
        let warm_decoy = match decoy {
            Some(d) => {
                let c = self.proxy.connect("postgres", &d.name).await;
                self.proxy.catalog_caught_up(&d.admin, &d.name).await;
                Some(c)
            }
            None => None,
        };
        let before = fresh.state().await;
        let holds = self.rejecter.count();
        let (name, dn, aa, addr) = (
            fresh.name.clone(),
            decoy_name.to_string(),
            a.clone(),
            self.proxy.addr,
        );
        let got = tokio::task::spawn_blocking(move || play_raw(addr, &aa, &name, &dn, true))
            .await
            .unwrap();
        let after = fresh.state().await;
        let how = if self.rejecter.count() > holds {
            " (held, rejected)"
        } else {
            ""
        };
        drop((warm, warm_decoy));
        let refusal =
            |m: &Msg| m.is_error() && matches!(m.code().as_deref(), Some("42501") | Some("08P01"));
        let refused = first_error(&got.judged).is_some_and(refusal)
            || got.startup.iter().any(|m| m.is_fatal())
            || (got.closed && got.all.iter().any(refusal));
        if after != before {
            self.fail(format!(
                "LEAK {title}: through airlock the database changed{how}: \
                 {before:?} -> {after:?}; the judged step got {}",
                summary(&got.judged)
            ));
        } else if !refused {
            self.fail(format!(
                "{title}: through airlock the database did not change but the judged step \
                 got no 42501/08P01{how}: judged {}; whole session {}",
                summary(&got.judged),
                summary(&got.all)
            ));
        } else {
            eprintln!("blocked {title}{how}");
        }
    }

    /// Real reads in a clean database of their own, with `plant` (safe
    /// user types and views) made directly: each must return rows through
    /// the proxy, in the simple and the extended protocol, unheld.
    pub async fn reads_pass(&mut self, plant: &str, reads: &[&str]) {
        let fresh = Fresh::new().await;
        fresh.plant(plant).await.expect("plant the safe objects");
        let client = self.proxy.connect("postgres", &fresh.name).await;
        self.proxy
            .catalog_caught_up(&fresh.admin, &fresh.name)
            .await;
        for sql in reads {
            let before = fresh.state().await;
            let holds = self.rejecter.count();
            let simple = client.simple_query(sql).await.map(|m| first_column(&m));
            let extended = client.query(*sql, &[]).await.map(|r| r.len());
            self.attempts += 2;
            if self.rejecter.count() > holds {
                self.fail(format!("READ HELD: {sql}"));
            }
            match simple {
                Ok(rows) if !rows.is_empty() => {}
                Ok(_) => self.fail(format!("READ [simple] {sql}: no rows")),
                Err(e) => self.fail(format!("READ REFUSED [simple] {sql}: {}", message(&e))),
            }
            match extended {
                Ok(n) if n > 0 => {}
                Ok(_) => self.fail(format!("READ [extended] {sql}: no rows")),
                Err(e) => self.fail(format!("READ REFUSED [extended] {sql}: {}", message(&e))),
            }
            if fresh.state().await != before {
                self.fail(format!("READ {sql}: the database changed"));
            }
        }
        drop(client);
        fresh.drop().await;
    }

    /// Asserts that no attack got through and every control worked.
    pub fn finish(self) {
        eprintln!(
            "{} attacks, {} held and rejected",
            self.attempts,
            self.rejecter.count()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} attacks leaked or were broken:\n\n{}",
            self.failures.len(),
            self.attempts,
            self.failures.join("\n\n")
        );
    }
}

/// A PostgreSQL conversion of `text` to `encoding`, and the Latin-1 reading
/// of the same bytes (what the proxy would see if it took them as Latin-1).
pub async fn encode(admin: &Client, text: &str, encoding: &str) -> (Vec<u8>, String) {
    let r = admin
        .query_one(
            "SELECT convert_to($1, $2), convert_from(convert_to($1, $2), 'LATIN1')",
            &[&text, &encoding],
        )
        .await
        .unwrap_or_else(|e| panic!("convert {text} to {encoding}: {e:?}"));
    (r.get(0), r.get(1))
}
