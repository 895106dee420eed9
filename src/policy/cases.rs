//! Policy test cases (`*.test.toml` beside the rule files): SQL, who asks,
//! and the decision and rule expected. `airlock policy test DIR` runs them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Decision, LoadError, Policy, Requester};
use crate::classify::classify;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<toml::Spanned<Case>>,
}

/// One expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub sql: String,
    pub user: String,
    pub database: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `allow`, `deny` or `require_approval`.
    pub expect: String,
    pub rule: Option<String>,
    pub approvals: Option<u32>,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct Outcome {
    pub file: PathBuf,
    pub line: usize,
    pub case: Case,
    pub decision: Decision,
    /// Why it failed, or `None` when it passed.
    pub failure: Option<String>,
}

/// Reads every `*.test.toml` in `dir`.
pub fn load(dir: &Path) -> Result<Vec<(PathBuf, usize, Case)>, Vec<LoadError>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| vec![LoadError::io(dir, e)])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.toml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(LoadError::io(&f, e));
                continue;
            }
        };
        match toml::from_str::<CaseFile>(&text) {
            Ok(cf) => {
                for c in cf.case {
                    let line = text[..c.span().start].matches('\n').count() + 1;
                    cases.push((f.clone(), line, c.into_inner()));
                }
            }
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text[..s.start].matches('\n').count() + 1)
                    .unwrap_or(0);
                errors.push(LoadError::new(&f.display().to_string(), line, e.message()));
            }
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Runs cases against a policy.
pub fn run(policy: &Policy, cases: Vec<(PathBuf, usize, Case)>) -> Vec<Outcome> {
    cases
        .into_iter()
        .map(|(file, line, case)| {
            let facts = classify(&case.sql);
            let who = Requester {
                user: &case.user,
                database: &case.database,
                groups: &case.groups,
            };
            let decision = policy.decide(&facts, &who);
            let mut failure = None;
            if decision.name() != case.expect {
                failure = Some(format!("expected {}, got {}", case.expect, decision.name()));
            } else if let Some(r) = &case.rule {
                if decision.rule() != r {
                    failure = Some(format!("expected rule {r:?}, got {:?}", decision.rule()));
                }
            }
            if failure.is_none() {
                if let (Some(want), Decision::RequireApproval { approvals, .. }) =
                    (case.approvals, &decision)
                {
                    if *approvals != want {
                        failure = Some(format!("expected {want} approvals, got {approvals}"));
                    }
                }
            }
            Outcome {
                file,
                line,
                case,
                decision,
                failure,
            }
        })
        .collect()
}
