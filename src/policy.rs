//! Policy: ordered rules read from the `*.toml` files of a policy directory,
//! deciding each message by the facts the classifier found.
//!
//! A message's statements are each matched against the rules in order (files
//! by name, rules in file order); the first rule that matches a statement
//! decides it. The message's decision is the strictest of its statements':
//! deny over require_approval over allow, and among approvals the one asking
//! most approvals. A statement no rule matches is denied, so a policy without
//! a catch-all fails closed. The format is documented in `policies/README.md`.

pub mod cases;
pub mod glob;
pub mod reload;
mod rules;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use std::sync::Arc;

use crate::classify::{Facts, Risks, StatementFacts};
pub use rules::{Action, LoadError, Rule};

/// Who is asking, in the terms rules match on.
#[derive(Debug, Clone, Default)]
pub struct Requester<'a> {
    pub user: &'a str,
    pub database: &'a str,
    pub groups: &'a [String],
}

/// What a policy says about a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow {
        rule: String,
    },
    Deny {
        rule: String,
        message: String,
    },
    RequireApproval {
        rule: String,
        approvers: Vec<String>,
        approvals: u32,
        #[serde(with = "humantime_secs")]
        timeout: Duration,
    },
}

mod humantime_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

impl Decision {
    /// The rule that made the decision.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow { rule }
            | Decision::Deny { rule, .. }
            | Decision::RequireApproval { rule, .. } => rule,
        }
    }

    /// `allow`, `deny` or `require_approval`.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::RequireApproval { .. } => "require_approval",
        }
    }

    fn severity(&self) -> (u8, u32) {
        match self {
            Decision::Allow { .. } => (0, 0),
            Decision::RequireApproval { approvals, .. } => (1, *approvals),
            Decision::Deny { .. } => (2, 0),
        }
    }
}

/// The rule name reported when no rule matched.
pub const NO_RULE: &str = "(no matching rule)";

/// A loaded policy: every rule of a directory, in order.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
    /// Functions the policy vouches for as reads (`[functions] read`).
    /// The read-only backstop is what catches a wrong entry here.
    pub read_functions: Vec<String>,
    /// The files the rules came from, for reporting and reload.
    pub files: Vec<std::path::PathBuf>,
}

/// The policy shipped in `policies/`, compiled in: what `airlock serve` uses
/// without `--policies`.
pub fn shipped() -> Policy {
    Policy::from_sources(&[(
        "policies/default.toml",
        include_str!("../policies/default.toml"),
    )])
    .expect("the shipped policy parses (checked by its tests)")
}

impl Policy {
    /// Loads every `*.toml` file of `dir` except test files (`*.test.toml`),
    /// in file-name order. All errors are reported, with file and line.
    pub fn load(dir: &Path) -> Result<Policy, Vec<LoadError>> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| vec![LoadError::io(dir, e)])?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".toml") && !name.ends_with(".test.toml")
            })
            .collect();
        files.sort();
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for f in &files {
            match std::fs::read_to_string(f) {
                Ok(text) => sources.push((f.display().to_string(), text)),
                Err(e) => errors.push(LoadError::io(f, e)),
            }
        }
        let refs: Vec<(&str, &str)> = sources
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        match Policy::from_sources(&refs) {
            Ok(mut p) if errors.is_empty() => {
                p.files = files;
                Ok(p)
            }
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Parses rule files given as (name, text).
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Policy, Vec<LoadError>> {
        let mut policy = Policy::default();
        let mut errors = Vec::new();
        for (name, text) in sources {
            match rules::parse_file(name, text) {
                Ok(mut f) => {
                    policy.rules.append(&mut f.rules);
                    policy.read_functions.append(&mut f.read_functions);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &policy.rules {
            if !seen.insert(r.name.as_str()) {
                errors.push(LoadError::new(
                    &r.file,
                    r.line,
                    format!("rule name {:?} is used twice", r.name),
                ));
            }
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }

    /// The facts with the functions this policy vouches for counted as
    /// reads: a statement whose only unknown functions are listed under
    /// `[functions] read` loses its `unknown_function` flag.
    pub fn trusted(&self, facts: &Arc<Facts>) -> Arc<Facts> {
        let vouched = |s: &StatementFacts| {
            s.risks.contains(Risks::UNKNOWN_FUNCTION)
                && s.unknown_functions().all(|f| {
                    self.read_functions
                        .iter()
                        .any(|p| glob::matches_object(p, f))
                })
        };
        if self.read_functions.is_empty() || !facts.statements.iter().any(vouched) {
            return Arc::clone(facts);
        }
        let mut adjusted = (**facts).clone();
        for s in &mut adjusted.statements {
            if vouched(s) {
                s.risks.remove(Risks::UNKNOWN_FUNCTION);
            }
        }
        Arc::new(adjusted)
    }

    /// The decision for one statement: the first rule that matches it.
    pub fn decide_statement(&self, s: &StatementFacts, who: &Requester<'_>) -> Decision {
        self.rules
            .iter()
            .find(|r| r.matches(s, who))
            .map(Rule::decision)
            .unwrap_or_else(|| Decision::Deny {
                rule: NO_RULE.into(),
                message: "no policy rule matches this statement".into(),
            })
    }

    /// The decision for a whole message: the strictest of its statements'.
    /// A message with no statements (an empty query) is allowed.
    pub fn decide(&self, facts: &Facts, who: &Requester<'_>) -> Decision {
        let mut worst: Option<Decision> = None;
        for s in &facts.statements {
            let d = self.decide_statement(s, who);
            if worst.as_ref().is_none_or(|w| d.severity() > w.severity()) {
                worst = Some(d);
            }
        }
        worst.unwrap_or_else(|| Decision::Allow {
            rule: "(empty query)".into(),
        })
    }
}

#[cfg(test)]
mod tests;
