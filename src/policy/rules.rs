//! Rule files: parsing, validation with file and line, and matching one
//! statement.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{glob, Decision, Requester};
use crate::classify::{Kind, Risks, StatementFacts};

/// A problem in a rule file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl LoadError {
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        LoadError {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        LoadError::new(&path.display().to_string(), 0, e.to_string())
    }
}

/// What a rule does with the statements it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny {
        message: String,
    },
    RequireApproval {
        approvers: Vec<String>,
        approvals: u32,
        timeout: Duration,
    },
}

/// One rule: conditions (all given ones must hold) and an action.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub file: String,
    pub line: usize,
    databases: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    kinds: Vec<Kind>,
    commands: Vec<String>,
    tables: Vec<String>,
    schemas: Vec<String>,
    functions: Vec<String>,
    risks: Risks,
    pub action: Action,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    functions: RawFunctions,
}

/// `[functions] read = ["schema.fn", "report_*"]`: functions the operator
/// vouches for as reads, beyond the built-ins airlock knows.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFunctions {
    #[serde(default)]
    read: Vec<String>,
}

/// What one rule file holds.
pub struct ParsedFile {
    pub rules: Vec<Rule>,
    pub read_functions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    database: Vec<String>,
    #[serde(default)]
    user: Vec<String>,
    #[serde(default)]
    group: Vec<String>,
    #[serde(default)]
    kind: Vec<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(default)]
    functions: Vec<String>,
    #[serde(default)]
    risks: Vec<String>,
    action: String,
    message: Option<String>,
    approvers: Option<Vec<String>>,
    approvals: Option<u32>,
    timeout: Option<String>,
}

/// Line number (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses a duration such as `90s`, `15m`, `2h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Parses and validates one rule file.
pub fn parse_file(file: &str, text: &str) -> Result<ParsedFile, Vec<LoadError>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        vec![LoadError::new(file, line, e.message().to_string())]
    })?;
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for spanned in raw.rule {
        let line = line_of(text, spanned.span().start);
        let r = spanned.into_inner();
        let mut err = |m: String| {
            errors.push(LoadError::new(
                file,
                line,
                format!("rule {:?}: {m}", r.name),
            ))
        };
        let mut kinds = Vec::new();
        for k in &r.kind {
            match Kind::parse(k) {
                Some(k) => kinds.push(k),
                None => err(format!(
                    "unknown kind {k:?} (read, write, ddl, transaction, session, utility)"
                )),
            }
        }
        let mut risks = Risks::NONE;
        for name in &r.risks {
            match Risks::from_name(name) {
                Some(x) => risks.insert(x),
                None => err(format!(
                    "unknown risk {name:?} (one of: {})",
                    Risks::ALL
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        let action = match r.action.as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny {
                message: r
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("denied by policy rule {:?}", r.name)),
            },
            "require_approval" => {
                let approvers = r.approvers.clone().unwrap_or_default();
                if approvers.is_empty() {
                    err("require_approval needs approvers = [\"group\", ...]".into());
                }
                let approvals = r.approvals.unwrap_or(1);
                if approvals == 0 {
                    err("approvals must be at least 1".into());
                }
                let timeout = match r.timeout.as_deref() {
                    None => Duration::from_secs(300),
                    Some(t) => parse_duration(t).unwrap_or_else(|| {
                        err(format!(
                            "timeout {t:?} is not a duration like 90s, 15m or 2h"
                        ));
                        Duration::from_secs(300)
                    }),
                };
                Action::RequireApproval {
                    approvers,
                    approvals,
                    timeout,
                }
            }
            other => {
                err(format!(
                    "unknown action {other:?} (allow, deny, require_approval)"
                ));
                Action::Allow
            }
        };
        if !matches!(action, Action::Deny { .. }) && r.message.is_some() {
            err("message is only for action = \"deny\"".into());
        }
        rules.push(Rule {
            name: r.name,
            description: r.description,
            file: file.to_string(),
            line,
            databases: r.database,
            users: r.user,
            groups: r.group,
            kinds,
            commands: r.command,
            tables: r.tables,
            schemas: r.schemas,
            functions: r.functions,
            risks,
            action,
        });
    }
    if errors.is_empty() {
        Ok(ParsedFile {
            rules,
            read_functions: raw.functions.read,
        })
    } else {
        Err(errors)
    }
}

fn any_glob(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| glob::matches(p, value))
}

impl Rule {
    /// Whether every condition the rule states holds for this statement.
    pub fn matches(&self, s: &StatementFacts, who: &Requester<'_>) -> bool {
        (self.databases.is_empty() || any_glob(&self.databases, who.database))
            && (self.users.is_empty() || any_glob(&self.users, who.user))
            && (self.groups.is_empty() || self.groups.iter().any(|g| who.groups.contains(g)))
            && (self.kinds.is_empty() || self.kinds.contains(&s.effective_kind()))
            && (self.commands.is_empty()
                || self
                    .commands
                    .iter()
                    .any(|p| glob::matches(&p.to_ascii_uppercase(), &s.command)))
            && (self.tables.is_empty()
                || s.tables_read
                    .iter()
                    .chain(&s.tables_written)
                    .any(|t| self.tables.iter().any(|p| glob::matches_object(p, t))))
            && (self.schemas.is_empty() || s.schemas().any(|sc| any_glob(&self.schemas, sc)))
            && (self.functions.is_empty()
                || s.functions
                    .iter()
                    .any(|f| self.functions.iter().any(|p| glob::matches_object(p, f))))
            && (self.risks.is_empty() || s.risks.intersects(self.risks))
    }

    /// The decision this rule makes.
    pub fn decision(&self) -> Decision {
        let rule = self.name.clone();
        match &self.action {
            Action::Allow => Decision::Allow { rule },
            Action::Deny { message } => Decision::Deny {
                rule,
                message: message.clone(),
            },
            Action::RequireApproval {
                approvers,
                approvals,
                timeout,
            } => Decision::RequireApproval {
                rule,
                approvers: approvers.clone(),
                approvals: *approvals,
                timeout: *timeout,
            },
        }
    }
}
