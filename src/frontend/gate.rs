//! The gate: the one place every complete client message passes before the
//! session forwards it upstream. It classifies the SQL a message carries,
//! asks the policy, and returns a [`Verdict`].
//!
//! Simple Query: every statement of the string is classified and the message
//! is decided as a whole. Extended protocol: a Parse is classified once and
//! its facts remembered under the statement name; Bind decides a portal by
//! those facts, without parsing again, and Execute runs what Bind decided.
//! A denial refuses the Parse itself; a statement that needs approval is
//! held at its Bind, before the server plans it (planning runs immutable
//! and stable functions) or has a portal that SQL FETCH could run. Once
//! approved, the portal runs however often it is executed.

mod confirm;
mod cursors;
mod decided;
mod encodings;
mod executed;
mod forget;
mod function_call;
mod named;
pub mod offload;
mod reparse;
mod shown;
mod text;
mod verdict;

use std::sync::Arc;

use tokio::sync::watch;

use crate::catalog::{self, Known};
use crate::classify::{cache::classify_cached, Facts, Kind, Risks, StatementFacts};
use crate::metrics::Metrics;
use crate::policy::{Decision, Policy, Requester};
use crate::protocol::backend::Report;
use crate::protocol::frontend as fe;
use crate::protocol::params;
use confirm::{Made, Tentative};
use decided::Decided;
pub use decided::Need;
use executed::{SqlPrepared, Tracked};
use named::Named;
pub use reparse::Reparse;
use shown::{portal_sql, with_executed};
use text::decode;
pub use verdict::Noted;
use verdict::{answer, malformed};

/// What the session does with one client message.
#[derive(Debug)]
pub enum Verdict {
    /// Send it upstream unchanged.
    Forward,
    /// Do not send it; answer the client with this error as PostgreSQL would
    /// (ErrorResponse, then discard until Sync in the extended protocol, then
    /// ReadyForQuery).
    Refuse(Report),
    /// Hold it (and everything after it) until reviewers decide.
    Hold(HoldRequest),
}

/// What a held statement needs reviewed.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub rule: String,
    pub risks: Vec<String>,
    pub approvers: Vec<String>,
    pub approvals: u32,
    pub timeout: std::time::Duration,
    pub facts: Arc<Facts>,
}

/// A prepared statement as the gate remembers it.
struct Prepared {
    /// Facts from the text alone: the catalog and the policy may have
    /// changed by the time it is bound.
    facts: Arc<Facts>,
    sql: Arc<str>,
    param_types: Vec<u32>,
    /// The text was classified with standard_conforming_strings on.
    standard_strings: bool,
    /// What binding it was last decided to mean.
    decided: Option<Arc<Decided>>,
    /// Its record, while the server has not confirmed it (`confirm`).
    id: u64,
}

/// A portal: what its statement was decided to mean when it was bound, and
/// for statements that need approval the SQL and bound parameters a
/// reviewer will see.
struct Portal {
    decided: Arc<Decided>,
    sql: Option<Arc<str>>,
    params: Vec<Option<String>>,
    /// Reviewers approved its Bind: it runs, however often it is executed.
    approved: bool,
    /// Its record, while the server has not confirmed it (`confirm`).
    id: u64,
}

/// Who the session belongs to, as policies see it.
#[derive(Debug, Clone)]
pub struct Requesting {
    pub user: String,
    pub database: String,
    pub groups: Vec<String>,
}

/// Per-session decision state.
pub struct Gate {
    who: Requesting,
    policy_rx: watch::Receiver<Arc<Policy>>,
    policy: Arc<Policy>,
    /// Prepared statements, by name.
    statements: Named<Prepared>,
    /// Named statements forgotten when user code may have run, which a
    /// Bind makes again (`reparse`).
    forgotten: Named<Prepared>,
    /// Messages of the gate's own to send before the current one.
    reparse: Option<Reparse>,
    /// Portals, by name.
    portals: Named<Portal>,
    /// The portal a held Bind makes, should reviewers approve it.
    held_bind: Option<(Box<[u8]>, Portal)>,
    /// The last simple Query's text facts and what they were decided to
    /// mean: the same shape again needs no new decision.
    last_query: Option<(Arc<Facts>, Arc<Decided>)>,
    /// Changes whenever the policy, the catalog or `unsettled` does: what
    /// was decided in an earlier epoch is decided again.
    epoch: u64,
    /// Classification switched off (benchmarks only): everything forwards.
    disabled: bool,
    /// The mode the last forwarded message needs.
    pub need: Need,
    /// The last message changes the read-only default itself.
    pub changes_read_only: bool,
    /// The last message may change the catalog (see `crate::catalog`).
    pub changes_catalog: bool,
    /// What the session knows of its database's catalog.
    known: Known,
    /// The session's transaction may have changed the catalog: reads that
    /// name anything are not proven.
    unsettled: bool,
    /// The last message changes how the server reads statement text
    /// (client_encoding, standard_conforming_strings): what follows must
    /// wait until the server has answered it.
    pub changes_lexer: bool,
    /// A message of this extended-protocol batch was refused: the server
    /// discards everything until Sync, so the rest needs no decision.
    discarding: bool,
    /// Something ran in this session that may have run user code, which
    /// may open cursors (WITH HOLD ones outlive its transaction) the gate
    /// never saw declared: FETCH and MOVE are no longer proven reads
    /// (`cursors`).
    user_code_ran: bool,
    /// Names SQL-level PREPARE used in this session: a protocol Parse of
    /// such a name may fail on the server, which keeps the SQL statement.
    sql_prepared: SqlPrepared,
    /// Statements and portals the server has not confirmed yet.
    tentative: Tentative,
    /// Facts of a large text classified off the session thread
    /// (`offload`).
    offloaded: Option<(Box<str>, Arc<Facts>)>,
    /// A decision the audit trail should record (not reads).
    noted: Option<Noted>,
    metrics: Arc<Metrics>,
    /// Decisions not yet added to `metrics`, by kind and decision.
    counts: [[u32; 3]; 6],
    uncounted: u32,
}

/// Facts for what cannot be known: a FunctionCall by OID, a portal or
/// statement the proxy did not see prepared.
fn unknown(command: &str, risk: Risks) -> Arc<Facts> {
    let mut f = Facts::unparseable("");
    f.error = None;
    let s: &mut StatementFacts = &mut f.statements[0];
    s.kind = Kind::Write;
    s.command = command.into();
    s.risks = risk;
    Arc::new(f)
}

impl Gate {
    pub fn new(
        who: Requesting,
        policy_rx: watch::Receiver<Arc<Policy>>,
        disabled: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        let policy = policy_rx.borrow().clone();
        Gate {
            who,
            policy_rx,
            policy,
            statements: Named::default(),
            forgotten: Named::default(),
            reparse: None,
            portals: Named::default(),
            held_bind: None,
            last_query: None,
            epoch: 0,
            disabled,
            need: Need::Neutral,
            changes_read_only: false,
            changes_catalog: false,
            known: Known::Unavailable(Arc::from("the catalog has not been read yet")),
            unsettled: false,
            changes_lexer: false,
            discarding: false,
            user_code_ran: false,
            sql_prepared: Default::default(),
            tentative: Tentative::default(),
            offloaded: None,
            noted: None,
            metrics,
            counts: [[0; 3]; 6],
            uncounted: 0,
        }
    }

    /// Decides one complete client message. `body` excludes the five header
    /// bytes; `client_encoding` is the session's. COPY data is streamed past
    /// the gate and never reaches here.
    pub fn inspect(
        &mut self,
        tag: u8,
        body: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) -> Verdict {
        self.need = Need::Neutral;
        self.changes_read_only = false;
        self.changes_catalog = false;
        self.changes_lexer = false;
        if self.disabled {
            return Verdict::Forward;
        }
        if tag == fe::SYNC {
            self.discarding = false;
            return Verdict::Forward;
        }
        if self.discarding
            && matches!(
                tag,
                fe::PARSE | fe::BIND | fe::EXECUTE | fe::DESCRIBE | fe::CLOSE
            )
        {
            return Verdict::Forward;
        }
        self.held_bind = None;
        self.inspect_message(tag, body, client_encoding, standard_strings)
    }

    /// The session answered a message with an error instead of forwarding
    /// it (the gate refused it, or reviewers did not approve it): in the
    /// extended protocol the server now discards everything until Sync, so
    /// the rest of the batch needs no decision.
    pub fn refused(&mut self, tag: u8) {
        if matches!(
            tag,
            fe::PARSE | fe::BIND | fe::EXECUTE | fe::DESCRIBE | fe::CLOSE
        ) {
            self.discarding = true;
        }
    }

    /// The held message was approved and goes upstream now.
    pub fn approved(&mut self) {
        if let Some((name, mut portal)) = self.held_bind.take() {
            portal.approved = true;
            portal.id = self.tentative.sent(Made::Portal, &name, true);
            self.portals.insert(&name, portal);
        }
    }

    fn inspect_message(
        &mut self,
        tag: u8,
        body: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) -> Verdict {
        if self.policy_rx.has_changed().unwrap_or(false) {
            self.policy = self.policy_rx.borrow_and_update().clone();
            self.epoch += 1;
        }
        match tag {
            fe::QUERY => {
                let Ok(sql) = fe::parse_query(body) else {
                    return malformed("Query");
                };
                let (text, exact) = match decode(sql, client_encoding) {
                    Ok(decoded) => decoded,
                    Err(report) => return Verdict::Refuse(report),
                };
                let raw = self.classify_spelled(&text, exact, standard_strings);
                let d = match &self.last_query {
                    Some((r, d)) if Arc::ptr_eq(r, &raw) && d.epoch == self.epoch => Arc::clone(d),
                    _ => {
                        let d = self.decided(&raw, &[]);
                        self.last_query = Some((raw, Arc::clone(&d)));
                        d
                    }
                };
                self.forget_if_statements_change(&d, &text);
                self.note(&d);
                let shown = self.with_prepared(Some(&*text), &d);
                self.catalog_may_change(&d);
                self.verdict(&d, || {
                    (shown.unwrap_or_else(|| text.into_owned()), Vec::new())
                })
            }
            fe::PARSE => {
                let Ok(p) = fe::parse_parse(body) else {
                    return malformed("Parse");
                };
                let (text, exact) = match decode(p.query, client_encoding) {
                    Ok(decoded) => decoded,
                    Err(report) => return Verdict::Refuse(report),
                };
                // Drivers parse the unnamed statement again and again with
                // the same text: what it was found to be still holds.
                let again = self.statements.get(p.statement).filter(|s| {
                    p.statement.is_empty()
                        && *s.sql == *text
                        && s.standard_strings == standard_strings
                });
                let (raw, sql, decided) = match again {
                    Some(s) => (
                        Arc::clone(&s.facts),
                        Arc::clone(&s.sql),
                        Decided::current(&s.decided, self.epoch)
                            .filter(|_| s.param_types == p.param_types)
                            .cloned(),
                    ),
                    None => (
                        self.classify_spelled(&text, exact, standard_strings),
                        Arc::from(text.as_ref()),
                        None,
                    ),
                };
                let d = decided.unwrap_or_else(|| self.decided(&raw, &p.param_types));
                self.forget_if_statements_change(&d, &text);
                if matches!(d.decision, Decision::Deny { .. }) {
                    // Denials stop at Parse; statements that need approval
                    // are held at Bind.
                    self.count(d.kind, 1, Some(text.into_owned()), d.decision.rule());
                    return answer(&d.facts, &d.decision);
                }
                if d.facts.risks().contains(Risks::CODE_AT_PARSE)
                    && !matches!(d.decision, Decision::Allow { .. })
                {
                    // The server would run that code before the Bind where
                    // the statement waits for review.
                    self.count(d.kind, 1, Some(text.into_owned()), d.decision.rule());
                    return verdict::runs_code_at_parse(&d.facts);
                }
                self.note(&d);
                let named = !p.statement.is_empty();
                if named {
                    self.forgotten.take(p.statement);
                }
                let mut sql = sql;
                let (facts, decided) = match self.statements.get(p.statement) {
                    // The same statement, whichever the server has.
                    Some(old) if named && *old.sql == *text => {
                        self.tentative.sent(Made::Statement, p.statement, false);
                        return Verdict::Forward;
                    }
                    // PostgreSQL refuses to redefine a named statement
                    // (42P05) and keeps the old one, unless the old one's
                    // Parse failed there, which the gate does not know:
                    // the name may mean either statement.
                    Some(old) if named => {
                        sql = Arc::from(format!(
                            "{}\n-- or, if the statement above was not prepared on the server:\n{text}",
                            old.sql
                        ));
                        (unknown("EXECUTE", Risks::UNKNOWN_STATEMENT), None)
                    }
                    // A name SQL PREPARE may have taken on the server: what
                    // Bind will run there is unknown.
                    _ if named
                        && std::str::from_utf8(named::server_name(p.statement))
                            .map(|n| self.sql_prepared.contains(n))
                            .unwrap_or(true) =>
                    {
                        (unknown("EXECUTE", Risks::UNKNOWN_STATEMENT), None)
                    }
                    _ => (raw, Some(d)),
                };
                let id = self.tentative.sent(Made::Statement, p.statement, true);
                self.statements.insert(
                    p.statement,
                    Prepared {
                        facts,
                        sql,
                        param_types: p.param_types,
                        standard_strings,
                        decided,
                        id,
                    },
                );
                Verdict::Forward
            }
            fe::BIND => {
                let Ok((portal, statement)) = fe::bind_names(body) else {
                    return malformed("Bind");
                };
                if self.statements.get(statement).is_none() {
                    self.reparse_forgotten(statement, client_encoding, standard_strings);
                }
                let Some(bound) = self.bind(statement, body) else {
                    return malformed("Bind");
                };
                self.note(&bound.decided);
                if let Decision::Allow { .. } = bound.decided.decision {
                    let mut bound = bound;
                    bound.id = self.tentative.sent(Made::Portal, portal, true);
                    self.portals.insert(portal, bound);
                    return Verdict::Forward;
                }
                // The server plans a portal when it is bound (planning
                // runs immutable and stable functions), and SQL FETCH can
                // run a portal the protocol made: nothing that needs
                // approval is bound before it has it.
                let d = Arc::clone(&bound.decided);
                let shown = self.with_prepared(bound.sql.as_deref(), &d);
                let (sql, params) = (bound.sql.clone(), bound.params.clone());
                let verdict = self.verdict(&d, || (portal_sql(shown, sql), params));
                if matches!(verdict, Verdict::Hold(_)) {
                    self.held_bind = Some((portal.into(), bound));
                }
                verdict
            }
            fe::EXECUTE => {
                let Ok((portal, _)) = fe::parse_execute(body) else {
                    return malformed("Execute");
                };
                let (d, sql, params, approved) = match self.portals.get(portal) {
                    Some(p) if p.approved || p.decided.epoch == self.epoch => (
                        Arc::clone(&p.decided),
                        p.sql.clone(),
                        p.params.clone(),
                        p.approved,
                    ),
                    // The policy changed since Bind: what Bind planned runs,
                    // decided by today's policy.
                    Some(p) => (
                        self.judged(Arc::clone(&p.decided.resolved)),
                        p.sql.clone(),
                        p.params.clone(),
                        false,
                    ),
                    None => (
                        self.decided(&unknown("EXECUTE", Risks::UNKNOWN_STATEMENT), &[]),
                        None,
                        Vec::new(),
                        false,
                    ),
                };
                self.note(&d);
                let shown = (!approved)
                    .then(|| self.with_prepared(sql.as_deref(), &d))
                    .flatten();
                self.catalog_may_change(&d);
                if approved {
                    return Verdict::Forward;
                }
                self.verdict(&d, || (portal_sql(shown, sql), params))
            }
            fe::CLOSE => {
                let Ok((kind, name)) = fe::parse_target(body) else {
                    return malformed("Close");
                };
                if kind == b'S' {
                    if let Some(p) = self.statements.get(name).filter(|_| !name.is_empty()) {
                        self.sql_prepared
                            .forget_protocol(named::server_name(name), &p.sql);
                    }
                    self.statements.remove(name);
                    self.forgotten.take(name);
                } else {
                    self.portals.remove(name);
                }
                self.tentative.sent(Made::Close, name, false);
                Verdict::Forward
            }
            fe::DESCRIBE => {
                // The server refuses a malformed Describe, and the session
                // pairs each Describe with its ParameterDescription.
                let Ok((kind, name)) = fe::parse_target(body) else {
                    return malformed("Describe");
                };
                // A statement user code may have replaced is described as
                // the client made it.
                if kind == b'S' && self.statements.get(name).is_none() {
                    self.reparse_forgotten(name, client_encoding, standard_strings);
                }
                Verdict::Forward
            }
            fe::FUNCTION_CALL => self.function_call(body),
            _ => Verdict::Forward,
        }
    }

    /// What the session must know of the message it is about to forward.
    #[inline]
    fn note(&mut self, d: &Decided) {
        self.need = d.need;
        self.changes_read_only = d.changes_read_only;
        self.changes_lexer = d.changes_lexer;
    }

    /// The message about to be forwarded may change the catalog, and run
    /// user code that prepares statements unseen.
    #[inline]
    fn catalog_may_change(&mut self, d: &Decided) {
        self.changes_catalog = d.changes_catalog;
        if d.changes_catalog {
            self.user_code_may_run();
        }
    }

    /// What the session knows of the catalog now.
    #[inline]
    pub fn set_catalog(&mut self, known: &Known) {
        if !self.known.same(known) {
            self.known = known.clone();
            self.epoch += 1;
        }
    }

    /// Whether the catalog may be changing where no snapshot can see it
    /// (see `crate::catalog::resolve`).
    #[inline]
    pub fn set_unsettled(&mut self, unsettled: bool) {
        if self.unsettled != unsettled {
            self.unsettled = unsettled;
            self.epoch += 1;
        }
    }

    /// `raw` completed with the catalog and the functions this policy
    /// vouches for (`params`: the parameter types a Parse declared), and
    /// decided.
    fn decided(&self, raw: &Arc<Facts>, params: &[u32]) -> Arc<Decided> {
        let executed = raw
            .statements
            .iter()
            .any(|s| s.executed.is_some())
            .then(|| {
                self.sql_prepared.as_executed(raw, |name| {
                    match self.statements.get(name.as_bytes()) {
                        None => Tracked::None,
                        // Kept as either of two statements (42P05).
                        Some(p) if p.facts.risks().contains(Risks::UNKNOWN_STATEMENT) => {
                            Tracked::Unknown
                        }
                        Some(p) => Tracked::Text(&p.sql),
                    }
                })
            })
            .flatten()
            .map(Arc::new);
        let raw = executed.as_ref().unwrap_or(raw);
        let resolved = catalog::resolve::resolve_changed(raw, &self.known, self.unsettled, params)
            .unwrap_or_else(|| Arc::clone(raw));
        let resolved = if resolved.statements.len() > 1 {
            catalog::resolve::settle_within(&resolved, &self.known).map_or(resolved, Arc::new)
        } else {
            resolved
        };
        let resolved = if self.user_code_ran {
            cursors::unseen(resolved)
        } else {
            resolved
        };
        self.judged(resolved)
    }

    /// Facts already resolved against the catalog, with the functions this
    /// policy vouches for, decided in this epoch.
    fn judged(&self, resolved: Arc<Facts>) -> Arc<Decided> {
        let facts = self.policy.trusted(&resolved);
        let decision = self.decide(&facts);
        Arc::new(Decided::new(
            self.epoch,
            resolved,
            facts,
            decision,
            &self.known,
        ))
    }

    /// The portal a Bind of `statement` makes. The server analyses the
    /// statement again if the catalog changed since Parse: so does the gate.
    /// Parameters are decoded only for statements a reviewer will see;
    /// `None` if they do not decode.
    fn bind(&mut self, statement: &[u8], body: &[u8]) -> Option<Portal> {
        let Some(p) = self.statements.get(statement) else {
            return Some(Portal {
                decided: self.decided(&unknown("EXECUTE", Risks::UNKNOWN_STATEMENT), &[]),
                sql: None,
                params: Vec::new(),
                approved: false,
                id: 0,
            });
        };
        let d = match Decided::current(&p.decided, self.epoch) {
            Some(d) => Arc::clone(d),
            None => {
                let d = self.decided(&p.facts, &p.param_types);
                if let Some(p) = self.statements.get_mut(statement) {
                    p.decided = Some(Arc::clone(&d));
                }
                d
            }
        };
        if !matches!(d.decision, Decision::RequireApproval { .. }) {
            return Some(Portal {
                decided: d,
                sql: None,
                params: Vec::new(),
                approved: false,
                id: 0,
            });
        }
        let p = self.statements.get(statement)?;
        let b = fe::parse_bind(body).ok()?;
        Some(Portal {
            sql: Some(Arc::clone(&p.sql)),
            params: bound_params(&b, &p.param_types),
            decided: d,
            approved: false,
            id: 0,
        })
    }

    /// [`Gate::classify`], for text whose names airlock can spell as the
    /// server will (`text::spelled`); other text is an unknown statement.
    fn classify_spelled(&mut self, text: &str, exact: bool, standard_strings: bool) -> Arc<Facts> {
        let server_utf8 = match &self.known {
            Known::Snapshot(s) => s.server_utf8,
            Known::Unavailable(_) => true,
        };
        if !text::spelled(text, exact, server_utf8) {
            return unknown(
                "STATEMENT WITH NAMES AIRLOCK CANNOT SPELL IN THIS ENCODING",
                Risks::UNKNOWN_STATEMENT,
            );
        }
        self.classify(text, standard_strings)
    }

    /// Facts for SQL text, from the text alone. With
    /// standard_conforming_strings off, backslashes escape quotes inside
    /// ordinary string literals, which the parser (built with it on) would
    /// read differently: such text cannot be classified.
    fn classify(&mut self, text: &str, standard_strings: bool) -> Arc<Facts> {
        if !standard_strings && text.contains('\\') {
            // Not a syntax error: a statement airlock cannot read the way the
            // server will. Whatever the policy does with unknown statements
            // (the shipped one: hold it for review) applies.
            return unknown("STATEMENT WITH BACKSLASHES", Risks::UNKNOWN_STATEMENT);
        }
        if let Some(facts) = self.take_offloaded(text) {
            return facts;
        }
        classify_cached(text)
    }

    /// The server's parameter types for a statement (from its
    /// ParameterDescription), for those the Parse left unspecified: bound
    /// values are then decoded by their real type for reviewers, and the
    /// statement is decided again with them.
    pub fn learn_param_types(&mut self, statement: &[u8], types: Vec<u32>) {
        if let Some(p) = self.statements.get_mut(statement) {
            if p.param_types.len() < types.len() {
                p.param_types.resize(types.len(), 0);
            }
            let mut learned = false;
            for (have, t) in p.param_types.iter_mut().zip(types) {
                if *have == 0 && t != 0 {
                    *have = t;
                    learned = true;
                }
            }
            if learned {
                p.decided = None;
            }
        }
    }

    /// A Sync, Query or FunctionCall went upstream (see `confirm`).
    #[inline]
    pub fn sync_point(&mut self) {
        self.tentative.sync_point();
    }

    /// The last `n` sync points were ignored by the server (COPY IN mode).
    pub fn ignored_syncs(&mut self, n: u32) {
        self.tentative.ignored_syncs(u64::from(n));
    }

    /// Portals do not outlive their transaction.
    #[inline]
    pub fn transaction_ended(&mut self) {
        self.portals.clear();
    }

    fn decide(&self, facts: &Facts) -> Decision {
        let who = Requester {
            user: &self.who.user,
            database: &self.who.database,
            groups: &self.who.groups,
        };
        self.policy.decide(facts, &who)
    }

    /// For text that runs SQL `EXECUTE name`: the text with what the name
    /// may stand for, for a reviewer (`shown`). None for anything else,
    /// which is shown as it is.
    fn with_prepared(&self, text: Option<&str>, d: &Decided) -> Option<String> {
        if !d.executes {
            return None;
        }
        Some(with_executed(text?, &d.facts, &self.sql_prepared, |name| {
            self.statements
                .get(name.as_bytes())
                .map(|p| Arc::clone(&p.sql))
        }))
    }
}

/// The bound parameters of a Bind, decoded for a reviewer.
fn bound_params(b: &fe::Bind<'_>, types: &[u32]) -> Vec<Option<String>> {
    b.params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            params::display(
                *v,
                params::format_of(&b.param_formats, i),
                types.get(i).copied().unwrap_or(0),
            )
        })
        .collect()
}
