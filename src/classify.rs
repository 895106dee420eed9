//! SQL → statement facts, with PostgreSQL's own grammar (libpg_query through
//! the `pg_query` crate), so that what airlock parses is exactly what the
//! server will execute.
//!
//! The classifier fails closed: a message is a read only if every statement
//! in it is proven to be one. Unparseable text, statements of a kind not
//! known to be harmless, functions not known to be free of side effects and
//! operators not known to be built in all make a message "not a read".
//!
//! Facts never depend on literal values (a string or a number in the SQL),
//! so two statements that differ only in literals have the same facts; the
//! cache relies on that.

pub mod builtins;
pub mod cache;
mod settings;
pub mod shape;
mod statement;
mod tree;

use std::fmt;

use serde::Serialize;

/// What kind of statement, in the terms policies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Reads data or settings and changes nothing.
    Read,
    /// Changes rows (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM,
    /// CALL, SELECT INTO, NOTIFY ...).
    Write,
    /// Changes the schema, roles or privileges (CREATE, ALTER, DROP, GRANT ...).
    Ddl,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT ...
    Transaction,
    /// SET, RESET, SHOW-less session state: DISCARD, LISTEN, DEALLOCATE ...
    Session,
    /// Everything else: DO, VACUUM, LOCK, CHECKPOINT, EXECUTE, and statements
    /// the classifier does not know.
    Utility,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Ddl => "ddl",
            Kind::Transaction => "transaction",
            Kind::Session => "session",
            Kind::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "read" => Kind::Read,
            "write" => Kind::Write,
            "ddl" => Kind::Ddl,
            "transaction" => Kind::Transaction,
            "session" => Kind::Session,
            "utility" => Kind::Utility,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! risks {
    ($($name:ident = $bit:expr, $text:literal, $not_read:expr;)*) => {
        /// Risk flags found in a statement.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct Risks(u32);

        impl Risks {
            $(pub const $name: Risks = Risks(1 << $bit);)*

            /// Every flag with its name, as policies and reviewers see it.
            pub const ALL: &'static [(Risks, &'static str)] = &[$((Risks::$name, $text),)*];

            /// The flags that make a statement not a read, whatever its kind.
            pub const NOT_READ: Risks = Risks(0 $(| if $not_read { 1 << $bit } else { 0 })*);
        }
    };
}

risks! {
    NO_WHERE = 0, "no_where", true;
    TRUNCATE = 1, "truncate", true;
    DROP = 2, "drop", true;
    ALTER = 3, "alter", true;
    GRANT = 4, "grant", true;
    WRITABLE_CTE = 5, "writable_cte", true;
    EXPLAIN_ANALYZE_WRITE = 6, "explain_analyze_write", true;
    COPY_FROM = 7, "copy_from", true;
    COPY_TO_FILE = 8, "copy_to_file", true;
    COPY_PROGRAM = 9, "copy_program", true;
    DO = 10, "do", true;
    CALL = 11, "call", true;
    SELECT_INTO = 12, "select_into", true;
    LOCKING = 13, "locking", true;
    PREPARE = 14, "prepare", false;
    EXECUTE = 15, "execute", true;
    ROLE_CHANGE = 16, "role_change", true;
    READ_ONLY_CHANGE = 17, "read_only_change", true;
    UNKNOWN_FUNCTION = 18, "unknown_function", true;
    SIDE_EFFECT_FUNCTION = 19, "side_effect_function", true;
    UNKNOWN_OPERATOR = 20, "unknown_operator", true;
    NOTIFY = 21, "notify", true;
    LISTEN = 22, "listen", false;
    TWO_PHASE = 23, "two_phase", true;
    SEARCH_PATH = 24, "search_path", true;
    UNKNOWN_STATEMENT = 25, "unknown_statement", true;
    UNPARSEABLE = 26, "unparseable", true;
    MULTI_STATEMENT = 27, "multi_statement", false;
    LEXER_CHANGE = 28, "lexer_change", false;
    USER_CODE = 29, "user_code", true;
    REPLICATION_ROLE = 30, "replication_role", true;
    CODE_AT_PARSE = 31, "code_at_parse", true;
}

impl Risks {
    pub const NONE: Risks = Risks(0);

    /// The flags a change of a setting itself carries (`SET role`, ...),
    /// which the policy judges by name.
    pub const SETTING: Risks = Risks::ROLE_CHANGE
        .with(Risks::READ_ONLY_CHANGE)
        .with(Risks::SEARCH_PATH)
        .with(Risks::REPLICATION_ROLE)
        .with(Risks::LEXER_CHANGE);

    /// Both sets of flags (usable in constants).
    pub const fn with(self, other: Risks) -> Risks {
        Risks(self.0 | other.0)
    }

    /// These flags but `other`'s (usable in constants).
    pub const fn without(self, other: Risks) -> Risks {
        Risks(self.0 & !other.0)
    }

    #[inline]
    pub fn contains(self, other: Risks) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub fn intersects(self, other: Risks) -> bool {
        self.0 & other.0 != 0
    }

    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[inline]
    pub fn insert(&mut self, other: Risks) {
        self.0 |= other.0;
    }

    #[inline]
    pub fn remove(&mut self, other: Risks) {
        self.0 &= !other.0;
    }

    /// The names of the flags set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Risks::ALL
            .iter()
            .filter(move |(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
    }

    /// The flag with this name.
    pub fn from_name(name: &str) -> Option<Risks> {
        Risks::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }
}

impl std::ops::BitAnd for Risks {
    type Output = Risks;
    fn bitand(self, rhs: Risks) -> Risks {
        Risks(self.0 & rhs.0)
    }
}

impl std::ops::BitOr for Risks {
    type Output = Risks;
    fn bitor(self, rhs: Risks) -> Risks {
        Risks(self.0 | rhs.0)
    }
}

impl Serialize for Risks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// The facts of one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementFacts {
    pub kind: Kind,
    /// The command, as PostgreSQL's command tag names it (`SELECT`,
    /// `UPDATE`, `CREATE TABLE`, ...).
    pub command: String,
    /// Relations read, as written in the SQL (`schema.name` or `name`).
    pub tables_read: Vec<String>,
    /// Relations written or changed.
    pub tables_written: Vec<String>,
    /// Functions called, as written (`schema.name` or `name`), and those the
    /// upstream catalog says the statement reaches.
    pub functions: Vec<String>,
    /// Operators used, as written, and those the parser looks up without
    /// their being written (`=` for `CASE x WHEN`, `JOIN ... USING`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
    /// Type names used (casts, column definitions of record functions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Names after a qualifier (`t.f`, `(x).f`): a column or field, or, in
    /// attribute notation, a call of the function `f(t)`.
    #[serde(skip)]
    pub attributes: Vec<String>,
    /// User-defined code the upstream catalog says the statement reaches
    /// (a view's functions, a domain's CHECK, a row-level security policy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_code: Vec<String>,
    pub risks: Risks,
    /// For SQL `PREPARE name AS ...`: the name (the protocol's Bind can use
    /// it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepared: Option<String>,
    /// Settings a SELECT changes with `set_config()` (lower case).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<String>,
    /// For SQL `EXECUTE name` (and `EXPLAIN EXECUTE name`): the name, so
    /// that reviewers can be shown what it was prepared as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed: Option<String>,
    /// Whether these facts follow from the values of literals, not from the
    /// shape of the text alone (`set_config('role', ...)` is not
    /// `set_config('jit', ...)`): such facts are never shared by statements
    /// that differ only in their literals (see `cache`). It must follow from
    /// the shape itself (which functions are called), never from a value.
    #[serde(skip)]
    pub literals_matter: bool,
    /// `RESET ALL` or `DISCARD ALL`: every setting back to its session
    /// default. That is no escape from read-only: the backstop starts each
    /// upstream session with `default_transaction_read_only = on`, so that
    /// is the default it returns to (and `transaction_read_only` is not
    /// reset); but the session must set its mode again.
    #[serde(skip)]
    pub resets_all: bool,
    /// For CREATE INDEX: its access method (`btree` when not written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_method: Option<String>,
}

impl StatementFacts {
    pub fn new(kind: Kind, command: &str) -> Self {
        StatementFacts {
            kind,
            command: command.to_string(),
            tables_read: Vec::new(),
            tables_written: Vec::new(),
            functions: Vec::new(),
            operators: Vec::new(),
            types: Vec::new(),
            attributes: Vec::new(),
            user_code: Vec::new(),
            risks: Risks::NONE,
            prepared: None,
            executed: None,
            sets: Vec::new(),
            literals_matter: false,
            resets_all: false,
            index_method: None,
        }
    }

    /// A read: the kind is `read` and no flag says otherwise.
    pub fn is_read(&self) -> bool {
        self.kind == Kind::Read && !self.risks.intersects(Risks::NOT_READ)
    }

    /// FETCH or MOVE: runs more of a cursor's query, which its text does
    /// not show.
    pub fn runs_cursor(&self) -> bool {
        matches!(self.command.as_str(), "FETCH" | "MOVE")
    }

    /// A SELECT that changes settings with `set_config()` and otherwise
    /// only reads: a session statement, as `SET` is.
    pub fn reads_and_sets(&self) -> bool {
        self.kind == Kind::Session
            && !self.sets.is_empty()
            && !self
                .risks
                .intersects(Risks::NOT_READ.without(Risks::SETTING))
    }

    /// The kind policies match on: a `read` that is not proven to be one
    /// (it calls an unknown function, locks rows, ...) counts as a write;
    /// so does a SELECT that changes settings and does more than read
    /// besides.
    pub fn effective_kind(&self) -> Kind {
        if (self.kind == Kind::Read && !self.is_read())
            || (self.kind == Kind::Session && !self.sets.is_empty() && !self.reads_and_sets())
        {
            Kind::Write
        } else {
            self.kind
        }
    }

    /// Functions called that are not known built-ins without side effects.
    pub fn unknown_functions(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().map(String::as_str).filter(|f| {
            let (schema, name) = match f.rsplit_once('.') {
                Some((s, n)) => (Some(s), n),
                None => (None, *f),
            };
            !builtins::is_safe_function(schema, name)
        })
    }

    /// Schemas named by the tables this statement touches.
    pub fn schemas(&self) -> impl Iterator<Item = &str> {
        self.tables_read
            .iter()
            .chain(&self.tables_written)
            .filter_map(|t| t.rsplit_once('.').map(|(s, _)| s))
    }
}

/// The facts of one message: every statement in it, or why it could not be
/// parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub statements: Vec<StatementFacts>,
    /// The parser's error, when the text is not valid SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Facts {
    /// Whether any statement's facts follow from the values of literals.
    pub fn literals_matter(&self) -> bool {
        self.statements.iter().any(|s| s.literals_matter)
    }

    /// Facts for text that is not valid SQL (or not decodable): never a read.
    pub fn unparseable(error: impl Into<String>) -> Facts {
        let mut s = StatementFacts::new(Kind::Utility, "UNPARSEABLE");
        s.risks.insert(Risks::UNPARSEABLE);
        Facts {
            statements: vec![s],
            error: Some(error.into()),
        }
    }

    /// Every statement is a read (an empty query is one too).
    pub fn is_read(&self) -> bool {
        self.error.is_none() && self.statements.iter().all(StatementFacts::is_read)
    }

    /// The union of every statement's flags.
    pub fn risks(&self) -> Risks {
        self.statements
            .iter()
            .fold(Risks::NONE, |acc, s| acc | s.risks)
    }
}

/// Classifies SQL text: every statement of a simple Query, or the one
/// statement of a Parse.
pub fn classify(sql: &str) -> Facts {
    let parsed = match pg_query::parse(sql) {
        Ok(p) => p,
        Err(e) => return Facts::unparseable(e.to_string()),
    };
    let mut statements: Vec<StatementFacts> = parsed
        .protobuf
        .stmts
        .iter()
        .filter_map(|raw| raw.stmt.as_ref())
        .map(|n| statement::classify(n))
        .collect();
    let multi = statements.len() > 1;
    for s in &mut statements {
        if multi {
            s.risks.insert(Risks::MULTI_STATEMENT);
        }
    }
    Facts {
        statements,
        error: None,
    }
}

#[cfg(test)]
mod tests;
