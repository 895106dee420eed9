//! What PostgreSQL and its extensions ship, so that anything else in a
//! database counts as user code.
//!
//! An OID below 16384 does not mean "PostgreSQL's own": `CREATE OR REPLACE
//! FUNCTION pg_catalog.lpad(...)` keeps the OID, and a superuser may add an
//! operator to a built-in operator family or a CHECK to a built-in domain.
//! Extension membership means nothing either: `ALTER EXTENSION ... ADD
//! FUNCTION` makes any function a member. So each load reads digests of
//! what initdb made and of each extension's members (`baseline.sql`, by
//! names and definitions, never OIDs) and compares them with the digests a
//! fresh initdb of the same major version gave (`baseline/pg15.txt`,
//! recorded by `scripts/record-baseline.sh`, and any files the config
//! names in `catalog_baseline`).
//!
//! A built-in part that differs makes every statement of the database that
//! names anything not a read (`Snapshot::ambient`); an extension whose
//! members differ from what its version installs, or one no baseline
//! knows, is trusted no more than a user's own functions.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// The query whose rows [`Baseline::judge`] compares.
pub const QUERY: &str = include_str!("baseline.sql");

static SHIPPED: &str = include_str!("baseline/pg15.txt");
static CURRENT: OnceLock<Baseline> = OnceLock::new();

/// Recorded digests.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    /// (major version, component) to the digests accepted for it.
    core: HashMap<(u32, String), Vec<String>>,
    /// (major version, extension, version, digest).
    extensions: HashSet<(u32, String, String, String)>,
}

/// What a database's digests say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Parts of the built-in catalog that differ from what PostgreSQL
    /// ships (or why they cannot be compared).
    pub core_differs: Vec<String>,
    /// Extensions whose members are exactly what their version installs.
    pub trusted_extensions: HashSet<String>,
}

impl Baseline {
    /// Reads a file `scripts/record-baseline.sh` wrote.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let mut b = Baseline::default();
        let mut major = None;
        for (n, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("line {}: {line:?}", n + 1);
            match words[..] {
                [] => {}
                [w, ..] if w.starts_with('#') => {}
                ["major", m] => major = Some(m.parse::<u32>().map_err(|_| bad())?),
                ["core", component, digest] => b
                    .core
                    .entry((major.ok_or_else(bad)?, component.to_string()))
                    .or_default()
                    .push(digest.to_string()),
                ["extension", name, version, digest] => {
                    b.extensions.insert((
                        major.ok_or_else(bad)?,
                        name.to_string(),
                        version.to_string(),
                        digest.to_string(),
                    ));
                }
                _ => return Err(bad()),
            }
        }
        Ok(b)
    }

    pub fn merge(&mut self, other: Baseline) {
        for (k, v) in other.core {
            self.core.entry(k).or_default().extend(v);
        }
        self.extensions.extend(other.extensions);
    }

    /// The shipped baseline and the files `paths` name, for every load of
    /// this process. The first call wins.
    pub fn install(paths: &[std::path::PathBuf]) -> Result<(), String> {
        let mut b = Self::shipped();
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            b.merge(Self::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        let _ = CURRENT.set(b);
        Ok(())
    }

    fn shipped() -> Baseline {
        Self::parse(SHIPPED).expect("the shipped baseline parses")
    }

    /// The baseline loads compare with.
    pub fn current() -> &'static Baseline {
        CURRENT.get_or_init(Self::shipped)
    }

    /// Compares the rows of [`QUERY`] from a server of `major`.
    pub fn judge(&self, major: u32, rows: &[[String; 4]]) -> Judged {
        let mut j = Judged::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for [kind, name, version, digest] in rows {
            match kind.as_str() {
                "core" => {
                    seen.insert(name);
                    let known = self.core.get(&(major, name.clone()));
                    if !known.is_some_and(|k| k.contains(digest)) {
                        j.core_differs.push(name.clone());
                    }
                }
                "extension" => {
                    let key = (major, name.clone(), version.clone(), digest.clone());
                    if self.extensions.contains(&key) {
                        j.trusted_extensions.insert(name.clone());
                    }
                }
                _ => {}
            }
        }
        // A component with no rows at all (every row of it deleted) is a
        // difference too.
        for (m, component) in self.core.keys() {
            if *m == major && !seen.contains(component.as_str()) {
                j.core_differs.push(component.clone());
            }
        }
        if !self.core.keys().any(|(m, _)| *m == major) {
            j.core_differs = vec![format!(
                "no baseline for PostgreSQL {major} (record one with scripts/record-baseline.sh)"
            )];
        }
        j.core_differs.sort();
        j.core_differs.dedup();
        j
    }
}

impl Baseline {
    /// Rows a pristine database of `major` with `extensions` installed
    /// gives, for tests and benchmarks of what is built on them.
    pub fn pristine_rows(major: u32, extensions: &[&str]) -> Vec<[String; 4]> {
        let b = Self::current();
        let mut rows: Vec<[String; 4]> = b
            .core
            .iter()
            .filter(|((m, _), _)| *m == major)
            .map(|((_, c), d)| ["core".into(), c.clone(), String::new(), d[0].clone()])
            .collect();
        for (m, name, version, digest) in &b.extensions {
            if *m == major && extensions.contains(&name.as_str()) {
                rows.push([
                    "extension".into(),
                    name.clone(),
                    version.clone(),
                    digest.clone(),
                ]);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, name: &str, version: &str, digest: &str) -> [String; 4] {
        [kind.into(), name.into(), version.into(), digest.into()]
    }

    #[test]
    fn the_shipped_baseline_knows_postgresql_15_and_its_contrib() {
        let b = Baseline::shipped();
        assert!(b.core.contains_key(&(15, "proc".into())));
        assert!(b
            .extensions
            .iter()
            .any(|(m, n, _, _)| *m == 15 && n == "pg_trgm"));
        assert!(b.extensions.iter().any(|(_, n, _, _)| n == "dblink"));
    }

    #[test]
    fn a_difference_is_named_and_an_unknown_extension_is_not_trusted() {
        let b =
            Baseline::parse("major 15\ncore proc aaa\ncore type bbb\nextension hstore 1.8 ccc\n")
                .unwrap();
        let j = b.judge(
            15,
            &[
                row("core", "proc", "", "aaa"),
                row("core", "type", "", "xxx"),
                row("extension", "hstore", "1.8", "ccc"),
                row("extension", "postgis", "3.4", "ddd"),
            ],
        );
        assert_eq!(j.core_differs, vec!["type".to_string()]);
        assert!(j.trusted_extensions.contains("hstore"));
        assert!(!j.trusted_extensions.contains("postgis"));
        // The same extension with other members.
        let j = b.judge(
            15,
            &[
                row("core", "proc", "", "aaa"),
                row("extension", "hstore", "1.8", "eee"),
            ],
        );
        assert!(j.trusted_extensions.is_empty());
        assert_eq!(
            j.core_differs,
            vec!["type".to_string()],
            "a missing component differs"
        );
    }

    #[test]
    fn another_major_version_has_no_baseline() {
        let b = Baseline::parse("major 15\ncore proc aaa\n").unwrap();
        let j = b.judge(16, &[row("core", "proc", "", "aaa")]);
        assert_eq!(j.core_differs.len(), 1);
        assert!(j.core_differs[0].contains("no baseline for PostgreSQL 16"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Baseline::parse("core proc aaa\n").is_err(), "no major");
        assert!(Baseline::parse("major 15\nwhat\n").is_err());
    }
}
