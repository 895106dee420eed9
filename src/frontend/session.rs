//! The session state machine: one task per client, one `select!` loop over
//! the client and upstream sockets, every client message through the
//! [`Gate`](super::gate::Gate) before it is forwarded.
//!
//! Reads and writes are non-blocking (`try_read`/`try_write` after readiness)
//! so that neither direction ever waits on the other: a client that pipelines
//! more than the socket buffers hold cannot deadlock against a server that is
//! busy sending results. Each direction stops reading when its outgoing buffer
//! passes [`HIGH_WATER`], which is the backpressure.
//!
//! The session keeps count of the sync points it has forwarded (Query, Sync,
//! FunctionCall) and the ReadyForQuery messages that answered them, so it
//! knows when the upstream is idle, and it knows the transaction status from
//! the last ReadyForQuery.

mod backstop;
mod catalog;
mod hold;
mod pipeline;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tracing::debug;

use super::buffer::Buffer;
use super::cancel::CancelGuard;
use super::error::SessionError;
use super::gate::offload::{self, Classifying};
use super::gate::{Gate, Requesting, Verdict};
use super::relay::Relay;
use super::startup::{Established, Identity, READ_ONLY_DEFAULT};
use super::Proxy;
use crate::approval::hold::HoldEvent;
use crate::approval::Approvals;
use crate::backend::{UpstreamRead, UpstreamWrite};
use crate::metrics::Metrics;
use crate::protocol::backend::{Report, TransactionStatus};
use crate::protocol::frontend as fe;
use crate::protocol::{peek_header, sqlstate, HEADER_LEN};
use backstop::Mode;
use hold::{Executing, Held};

/// Bytes waiting for one side beyond which the session stops reading the
/// other side.
const HIGH_WATER: usize = 256 * 1024;
/// Free space asked of a buffer before each socket read.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing session may spend delivering its last bytes.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Relaying in both directions.
    Open,
    /// The client broke the protocol: read nothing more from it, but let the
    /// answers to what was already forwarded reach it, as PostgreSQL would,
    /// then report the violation and close.
    Draining,
    /// Done: deliver what is buffered, then close both sockets.
    Closing,
}

pub struct Session {
    client_rd: OwnedReadHalf,
    client_wr: OwnedWriteHalf,
    server_rd: UpstreamRead,
    server_wr: UpstreamWrite,
    /// Client bytes not yet examined.
    client_in: Buffer,
    /// Bytes for the server.
    server_out: Buffer,
    /// Server bytes; the relay says how many of the front may go out.
    server_in: Buffer,
    relay: Relay,
    gate: Gate,
    pub identity: Identity,
    pub status: TransactionStatus,
    state: State,
    /// Sync points forwarded (Query, Sync, FunctionCall) whose ReadyForQuery
    /// has not arrived.
    pending: u32,
    /// Syncs forwarded since the last Execute or Query; if that message
    /// started COPY FROM STDIN the server ignored them.
    syncs_since_execute: u32,
    /// The server is in COPY IN mode and ignores Sync and Flush.
    copy_in: bool,
    /// CopyDone/CopyFail forwarded before the server's CopyInResponse came,
    /// each with the Syncs forwarded between the Execute and it (which the
    /// server, in COPY IN mode by then, ignores).
    copy_ends_early: std::collections::VecDeque<u32>,
    /// Body bytes of a CopyData message still streaming from the client.
    copy_remaining: usize,
    /// The server announced it is closing (a FATAL error).
    server_fatal: bool,
    /// Shutdown asked: close at the next moment the session is idle.
    shutting_down: bool,
    next_refusal: u64,
    /// The read-only backstop is on.
    backstop: bool,
    upstream_mode: Mode,
    /// Extended-protocol messages were forwarded since the last Sync.
    batch_open: bool,
    /// A message that changes how statement text is read is in flight: the
    /// next message waits for its answer.
    lexer_barrier: bool,
    /// The approval service, if a store is configured.
    approvals: Option<Arc<Approvals>>,
    /// The statement held for review, if any (its message is still at the
    /// front of `client_in`).
    hold: Option<Held>,
    /// The message at the front of `client_in` was approved: forward it
    /// without asking the gate again.
    approved_head: bool,
    /// The head message's decision waits to be durable in the audit trail
    /// before it is forwarded (an allowed write).
    auditing: Option<crate::approval::Durable>,
    /// Whether that wait ended with the decision committed (forward it) or
    /// not (refuse it: no write runs unrecorded); none before.
    audited: Option<bool>,
    /// An approved statement running upstream.
    executing: Option<Executing>,
    /// Rows the last CommandComplete reported, while executing.
    last_rows: Option<i64>,
    /// Statements described (Describe 'S') whose ParameterDescription has
    /// not come yet.
    describes: std::collections::VecDeque<Vec<u8>>,
    /// The SQLSTATE of an error the last approved statement met.
    last_error: Option<String>,
    /// CancelRequests for this session.
    cancels: tokio::sync::mpsc::UnboundedReceiver<()>,
    cancel_target: Option<super::cancel::CancelTarget>,
    connect_timeout: Duration,
    /// Why the client is being disconnected, if it broke the protocol.
    violation: Option<String>,
    /// The SQLSTATE the violation is reported with.
    violation_code: &'static str,
    max_message_size: usize,
    /// The length of the message at the head of `client_in` while it has
    /// not all arrived (0 otherwise): it is read whole, whatever its size
    /// up to `max_message_size`.
    head_wants: usize,
    /// Client messages stopped at the high-water mark of `server_out`: once
    /// it drains below, they are taken again before the session waits
    /// (nothing else would wake it: the client waits for their answer).
    paused_at_high_water: bool,
    /// The head message's text being classified off the thread.
    classifying: Option<Classifying>,
    metrics: Arc<Metrics>,
    /// The database's catalog of user code (none with classification off).
    catalog: Option<crate::catalog::Watch>,
    /// Something that may change the catalog was forwarded, and the
    /// snapshot has not been renewed since.
    catalog_dirty: bool,
    /// The next message waits for a new snapshot, or for another session's
    /// change of the catalog to finish.
    waiting_catalog: bool,
    /// Until when the session waits for other sessions' changes.
    catalog_deadline: Option<tokio::time::Instant>,
    /// The message at the front has waited for the catalog (counted).
    catalog_waited: bool,
    pub process_id: u32,
    _cancel_guard: Option<CancelGuard>,
}

enum Event {
    ServerRead(std::io::Result<usize>),
    ClientRead(std::io::Result<usize>),
    Hold(Box<HoldEvent>),
    Cancel,
    Catalog,
    /// Facts of the head message's text, classified off the thread.
    Classified(Option<(String, crate::classify::Facts)>),
    /// Whether the head message's audit event was committed.
    Audited(bool),
    Writable(Result<(), SessionError>),
    Shutdown,
}

impl Session {
    pub fn new(e: Established, proxy: &Proxy) -> Self {
        let backstop = proxy.config.read_only_backstop && proxy.config.classification;
        let mut relay = Relay::new(e.client_encoding, e.standard_strings);
        if backstop {
            relay.hide_parameter(READ_ONLY_DEFAULT);
        }
        let catalog = proxy
            .config
            .classification
            .then(|| proxy.catalogs.watch(&e.identity.database, &e.identity.user));
        let (client_rd, client_wr) = e.client.into_split();
        let (server_rd, server_wr) = e.server.into_split();
        Session {
            client_rd,
            client_wr,
            server_rd,
            server_wr,
            client_in: e.client_buf,
            server_out: Buffer::with_capacity(READ_CHUNK),
            server_in: e.server_buf,
            relay,
            gate: Gate::new(
                Requesting {
                    groups: proxy.config.groups_of(&e.identity.user),
                    user: e.identity.user.clone(),
                    database: e.identity.database.clone(),
                },
                proxy.policy.subscribe(),
                !proxy.config.classification,
                Arc::clone(&proxy.metrics),
            ),
            identity: e.identity,
            status: e.status,
            state: State::Open,
            pending: 0,
            syncs_since_execute: 0,
            copy_in: false,
            copy_ends_early: Default::default(),
            copy_remaining: 0,
            server_fatal: false,
            shutting_down: false,
            next_refusal: 0,
            violation: None,
            violation_code: sqlstate::PROTOCOL_VIOLATION,
            head_wants: 0,
            paused_at_high_water: false,
            classifying: None,
            approvals: proxy.approvals.get().cloned(),
            hold: None,
            approved_head: false,
            auditing: None,
            audited: None,
            executing: None,
            last_rows: None,
            last_error: None,
            describes: Default::default(),
            cancels: e.cancels,
            cancel_target: e.cancel_target,
            connect_timeout: proxy.config.connect_timeout,
            backstop,
            upstream_mode: Mode::ReadOnly,
            batch_open: false,
            lexer_barrier: false,
            max_message_size: proxy.config.max_message_size,
            metrics: Arc::clone(&proxy.metrics),
            catalog,
            catalog_dirty: false,
            waiting_catalog: false,
            catalog_deadline: None,
            catalog_waited: false,
            process_id: e.process_id,
            _cancel_guard: e.cancel_guard,
        }
    }

    /// Relays until the client leaves, the server goes away, or shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), SessionError> {
        let result = self.relay_loop(&mut shutdown).await;
        // A client gone while held leaves its request pending; the session's
        // hold ends here.
        self.end_hold();
        self.close().await;
        result
    }

    async fn relay_loop(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        // Bytes that arrived with the end of authentication.
        self.on_server_data()?;
        if *shutdown.borrow() {
            self.shutting_down = true;
        }
        let mut drain_deadline = None;
        loop {
            if !self.client_in.is_empty() && self.server_out.len() < HIGH_WATER {
                self.on_client_data();
            }
            if self.state == State::Draining {
                drain_deadline.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_GRACE);
                self.finish_draining();
            }
            self.flush_server()?;
            if self.paused_at_high_water
                && self.server_out.len() < HIGH_WATER
                && !self.client_in.is_empty()
            {
                continue;
            }
            self.flush_client()?;
            if self.shutting_down {
                self.close_if_idle();
            }
            if self.state == State::Closing {
                return match self.violation.take() {
                    Some(why) => Err(SessionError::ClientProtocol(why)),
                    None => Ok(()),
                };
            }
            // Unread client bytes pile up while a statement is held; past
            // the high-water mark the client waits (TCP backpressure).
            let read_client = self.state == State::Open
                && self.server_out.len() < HIGH_WATER
                && (self.client_in.len() < 2 * HIGH_WATER
                    || self.client_in.len() < self.head_wants);
            let read_server = self.relay.ready() < HIGH_WATER;
            let write_client = self.relay.ready() > 0;
            let write_server = !self.server_out.is_empty();
            // Reads go through `AsyncRead` rather than readiness + try_read:
            // a short read tells tokio the socket is drained, which saves a
            // failing recv per message.
            let event = tokio::select! {
                biased;
                r = self.server_rd.read(self.server_in.spare_mut(READ_CHUNK)), if read_server => {
                    Event::ServerRead(r)
                }
                r = self.client_rd.read(self.client_in.spare_mut(READ_CHUNK)), if read_client => {
                    Event::ClientRead(r)
                }
                r = self.client_wr.writable(), if write_client => {
                    Event::Writable(r.map_err(SessionError::Client))
                }
                r = self.server_wr.writable(), if write_server => {
                    Event::Writable(r.map_err(SessionError::Server))
                }
                ev = hold::next_event(&mut self.hold), if self.hold.is_some() => Event::Hold(Box::new(ev)),
                Some(()) = self.cancels.recv() => Event::Cancel,
                _ = catalog::changed(&mut self.catalog), if self.waiting_catalog => Event::Catalog,
                r = offload::finished(&mut self.classifying), if self.classifying.is_some() => {
                    Event::Classified(r.ok())
                }
                r = durable(&mut self.auditing), if self.auditing.is_some() => Event::Audited(r),
                _ = shutdown.changed(), if !self.shutting_down => Event::Shutdown,
                _ = sleep_until(drain_deadline), if drain_deadline.is_some() => {
                    // The upstream never finished: report and close anyway.
                    self.pending = 0;
                    self.finish_draining();
                    self.state = State::Closing;
                    continue;
                }
            };
            match event {
                Event::ServerRead(r) => self.read_server(r)?,
                Event::ClientRead(r) => self.read_client(r)?,
                Event::Writable(r) => r?,
                Event::Hold(ev) => self.on_hold_event(*ev),
                Event::Cancel => self.on_cancel(),
                Event::Catalog => self.waiting_catalog = false,
                Event::Classified(r) => {
                    self.classifying = None;
                    if let Some((text, facts)) = r {
                        self.gate.offloaded(text, facts);
                    }
                }
                Event::Audited(ok) => {
                    self.auditing = None;
                    self.audited = Some(ok);
                }
                Event::Shutdown => self.shutting_down = true,
            }
        }
    }

    fn read_client(&mut self, read: std::io::Result<usize>) -> Result<(), SessionError> {
        match read {
            Ok(0) => self.client_gone(),
            Ok(n) => {
                self.client_in.commit(n);
                self.on_client_data();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if is_hangup(&e) => self.client_gone(),
            Err(e) => return Err(SessionError::Client(e)),
        }
        Ok(())
    }

    fn read_server(&mut self, read: std::io::Result<usize>) -> Result<(), SessionError> {
        match read {
            Ok(0) => self.server_gone(),
            Ok(n) => {
                self.server_in.commit(n);
                self.on_server_data()?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if is_hangup(&e) => self.server_gone(),
            Err(e) => return Err(SessionError::Server(e)),
        }
        Ok(())
    }

    /// Frames client bytes into messages and passes each through the gate.
    fn on_client_data(&mut self) {
        self.paused_at_high_water = false;
        while self.state == State::Open
            && self.hold.is_none()
            && self.classifying.is_none()
            && self.auditing.is_none()
        {
            if self.copy_remaining > 0 {
                let n = self.copy_remaining.min(self.client_in.len());
                if n == 0 {
                    break;
                }
                self.server_out.extend(&self.client_in.bytes()[..n]);
                self.client_in.consume(n);
                self.copy_remaining -= n;
                continue;
            }
            if self.server_out.len() >= HIGH_WATER {
                self.paused_at_high_water = true;
                break;
            }
            let (tag, len) = match peek_header(self.client_in.bytes()) {
                None => break,
                Some(Err(len)) => {
                    return self.client_violation(format!("invalid message length {len}"));
                }
                Some(Ok(h)) => h,
            };
            if tag == fe::COPY_DATA {
                // Streamed: the rows of a COPY are not buffered whole.
                self.server_out
                    .extend(&self.client_in.bytes()[..HEADER_LEN]);
                self.client_in.consume(HEADER_LEN);
                self.copy_remaining = len;
                continue;
            }
            if !fe::is_known_tag(tag) {
                return self
                    .client_violation(format!("invalid frontend message type {}", tag as i32));
            }
            if len > self.max_message_size {
                self.client_violation(format!(
                    "message of {len} bytes exceeds airlock's limit of {} bytes (max_message_size)",
                    self.max_message_size
                ));
                self.violation_code = sqlstate::PROGRAM_LIMIT_EXCEEDED;
                return;
            }
            let total = HEADER_LEN + len;
            if self.client_in.len() < total {
                self.client_in.reserve(total - self.client_in.len());
                self.head_wants = total;
                break;
            }
            self.head_wants = 0;
            if self.lexer_barrier && matches!(tag, fe::QUERY | fe::PARSE) {
                if self.batch_open {
                    // Within one unsynced batch the server reads this text
                    // with settings it has not reported yet: refuse it.
                    self.lexer_barrier = false;
                    self.refuse(
                        tag,
                        Report::error(
                            sqlstate::FEATURE_NOT_SUPPORTED,
                            "airlock needs a Sync after a change of client_encoding or standard_conforming_strings",
                        ),
                    );
                    self.client_in.consume(total);
                    self.forwarded(tag);
                    continue;
                }
                if self.pending > 0 {
                    break;
                }
                self.lexer_barrier = false;
            }
            // The server analyses statements at Query, Parse and Bind (a
            // portal's plan is fixed when it is bound): the gate needs the
            // catalog as it will be then. Execute runs what Bind planned.
            let decided = self.approved_head || self.audited.is_some();
            if !decided
                && matches!(tag, fe::QUERY | fe::PARSE | fe::BIND | fe::FUNCTION_CALL)
                && !self.catalog_ready()
            {
                break;
            }
            let message = &self.client_in.bytes()[..total];
            if !decided {
                let (enc, std) = (&self.relay.client_encoding, self.relay.standard_strings);
                if let Some(text) = self
                    .gate
                    .wants_offload(tag, &message[HEADER_LEN..], enc, std)
                {
                    self.classifying = Some(offload::start(text));
                    break;
                }
            }
            // An approved message keeps its approval until it is actually
            // forwarded (a mode switch may make it wait a round trip).
            let verdict = if self.audited == Some(false) {
                self.audited = None;
                Verdict::Refuse(Report::error(
                    sqlstate::SYSTEM_ERROR,
                    "airlock could not record this statement in its audit trail, so it did not run",
                ))
            } else if decided {
                Verdict::Forward
            } else {
                self.gate.inspect(
                    tag,
                    &message[HEADER_LEN..],
                    &self.relay.client_encoding,
                    self.relay.standard_strings,
                )
            };
            if let Some(reparse) = self.gate.take_reparse() {
                // A statement the gate makes again just before this Bind.
                self.server_out.extend(&reparse.bytes);
                self.relay.expect_reparsed(reparse.at);
                self.batch_open = true;
            }
            if let Some(noted) = self.gate.take_noted() {
                if let Some(durable) = self.audit_noted(noted) {
                    // Forwarded once the decision is committed.
                    self.auditing = Some(durable);
                    break;
                }
            }
            match verdict {
                Verdict::Forward => {
                    if !self.switch_mode_for(self.gate.need) {
                        // Wait for the upstream to answer what is in flight;
                        // the message is decided again then.
                        break;
                    }
                    if self.gate.changes_read_only {
                        self.upstream_mode = Mode::Unknown;
                    }
                    if self.gate.changes_lexer || self.approved_head {
                        // What follows is read with the new settings only
                        // once the server has answered this message.
                        self.lexer_barrier = true;
                    }
                    if self.approved_head {
                        self.gate.approved();
                        self.approved_head = false;
                    }
                    self.audited = None;
                    self.catalog_forwarded();
                    if tag == fe::DESCRIBE {
                        let body = &self.client_in.bytes()[HEADER_LEN..total];
                        if let Ok((b'S', name)) = fe::parse_target(body) {
                            self.describes.push_back(name.to_vec());
                        }
                    }
                    self.server_out.extend(&self.client_in.bytes()[..total]);
                }
                Verdict::Refuse(report) => self.refuse(tag, report),
                Verdict::Hold(req) => {
                    // The message stays unread until the decision.
                    self.begin_hold(tag, req);
                    continue;
                }
            }
            self.client_in.consume(total);
            self.forwarded(tag);
        }
    }

    /// Drops the complete message at the front of `client_in`.
    fn drop_head_message(&mut self) {
        if let Some(Ok((_, len))) = peek_header(self.client_in.bytes()) {
            self.client_in
                .consume((HEADER_LEN + len).min(self.client_in.len()));
        }
    }

    /// Tells the client something at the next message boundary.
    fn say(&mut self, report: Report) {
        self.relay.inject(&report.to_bytes());
        if let Err(e) = self.on_server_data() {
            debug!(error = %e, "upstream stream broken");
            self.state = State::Closing;
        }
    }

    /// Writes what the server may see now, without waiting.
    fn flush_server(&mut self) -> Result<(), SessionError> {
        while !self.server_out.is_empty() {
            match self.server_wr.try_write(self.server_out.bytes()) {
                Ok(n) => self.server_out.consume(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if is_hangup(&e) => {
                    self.server_gone();
                    break;
                }
                Err(e) => return Err(SessionError::Server(e)),
            }
        }
        Ok(())
    }

    /// Writes what the client may see now, without waiting.
    fn flush_client(&mut self) -> Result<(), SessionError> {
        while self.relay.ready() > 0 {
            let ready = &self.server_in.bytes()[..self.relay.ready()];
            match self.client_wr.try_write(ready) {
                Ok(n) => {
                    self.server_in.consume(n);
                    self.relay.written(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(SessionError::Client(e)),
            }
        }
        Ok(())
    }

    /// The client closed its socket without a Terminate: end the upstream
    /// session politely if the stream to it stands at a message boundary.
    fn client_gone(&mut self) {
        if self.copy_remaining == 0 {
            self.server_out.extend(b"X\0\0\0\x04");
        }
        self.state = State::Closing;
    }

    /// The upstream closed. If it did not say why (a FATAL error), tell the
    /// client, as long as no partial message has been forwarded.
    fn server_gone(&mut self) {
        if self.state == State::Open && !self.server_fatal {
            Metrics::inc(&self.metrics.upstream_lost);
            debug!("upstream connection lost");
            self.say_fatal(Report::fatal(
                sqlstate::CONNECTION_FAILURE,
                "terminating connection because the upstream server closed it",
            ));
        }
        self.server_out.consume(self.server_out.len());
        self.state = State::Closing;
    }

    /// On shutdown, an idle session (no statement running, no transaction
    /// open) is told and closed; a busy one gets until its next idle moment.
    fn close_if_idle(&mut self) {
        // A held statement never ran upstream: the session can close at
        // once, and its request stays open for a re-run after approval.
        let holding = self.hold.is_some() && self.pending == 0 && self.relay.ready() == 0;
        let idle = self.state == State::Open
            && self.pending == 0
            && self.status == TransactionStatus::Idle
            && !self.copy_in
            && self.copy_remaining == 0
            && self.client_in.is_empty();
        if idle || (self.state == State::Open && holding) {
            let mut report = Report::fatal(
                sqlstate::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            );
            if let Some(id) = self.hold.as_ref().and_then(|h| h.id.clone()) {
                report = report.with_detail(format!(
                    "airlock is shutting down; request {id} stays open: once it is approved, run the statement again."
                ));
            }
            self.say_fatal(report);
            self.server_out.extend(b"X\0\0\0\x04");
            self.state = State::Closing;
        }
    }

    /// A protocol violation by the client ends the session once what was
    /// already forwarded has been answered (see [`State::Draining`]).
    fn client_violation(&mut self, why: String) {
        Metrics::inc(&self.metrics.client_protocol_errors);
        self.client_in.consume(self.client_in.len());
        self.violation = Some(why);
        self.state = State::Draining;
    }

    /// Once the upstream has answered everything forwarded, reports the
    /// violation and closes.
    fn finish_draining(&mut self) {
        if self.pending > 0 || !self.relay.at_boundary(&self.server_in) {
            return;
        }
        let why = self.violation.clone().unwrap_or_default();
        self.say_fatal(Report::fatal(self.violation_code, why));
        if self.copy_remaining == 0 {
            self.server_out.extend(b"X\0\0\0\x04");
        }
        self.state = State::Closing;
    }

    /// Queues an error of the proxy's own for the client, if the stream to
    /// it stands at a message boundary (else the client just sees the close).
    fn say_fatal(&mut self, report: Report) {
        if self.relay.at_boundary(&self.server_in) {
            self.relay.inject(&report.to_bytes());
            // At a boundary the scan splices at once and sees nothing new.
            let _ = self.relay.scan(&mut self.server_in);
        }
    }

    /// Delivers the last bytes in both directions, briefly, and closes.
    async fn close(&mut self) {
        self.gate.flush_counts();
        let deliver = async {
            if !self.server_out.is_empty() {
                let _ = self.server_wr.write_all(self.server_out.bytes()).await;
            }
            let ready = self.relay.ready();
            if ready > 0 {
                let _ = self
                    .client_wr
                    .write_all(&self.server_in.bytes()[..ready])
                    .await;
            }
            let _ = self.client_wr.shutdown().await;
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, deliver).await;
    }
}

/// Sleeps until `deadline`; only polled when there is one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn is_hangup(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Whether the audit event waited for was committed; never, if none is.
async fn durable(waiting: &mut Option<crate::approval::Durable>) -> bool {
    match waiting {
        Some(rx) => rx.await.unwrap_or(false),
        None => std::future::pending().await,
    }
}
