//! What a reviewer is shown for a held statement. Mostly its text as the
//! client sent it; but `EXECUTE name` (SQL) says nothing of what it runs,
//! so the text is followed by what the session prepared under that name,
//! as comments. The gate cannot always know which of several candidates
//! the server holds (a PREPARE or a protocol Parse of a name that was taken
//! fails there), so it shows each of them.

use std::fmt::Write;
use std::sync::Arc;

use super::executed::SqlPrepared;
use crate::classify::Facts;

/// `text` with, for each name it EXECUTEs, what that name may be: the
/// texts of SQL PREPAREs and the protocol-prepared statement of that name
/// (`protocol`).
pub(super) fn with_executed(
    text: &str,
    facts: &Facts,
    sql: &SqlPrepared,
    protocol: impl Fn(&str) -> Option<Arc<str>>,
) -> String {
    let mut shown = text.to_string();
    let mut seen: Vec<&str> = Vec::new();
    for name in facts
        .statements
        .iter()
        .filter_map(|s| s.executed.as_deref())
    {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let mut candidates: Vec<Arc<str>> = sql.sql_texts(name).to_vec();
        candidates.extend(protocol(name));
        let _ = match candidates.len() {
            0 => write!(
                shown,
                "\n-- {name}: airlock saw no statement of this name prepared"
            ),
            1 => write!(shown, "\n-- {name} was prepared as:"),
            _ => write!(
                shown,
                "\n-- {name} was prepared as one of these (whichever the server accepted):"
            ),
        };
        for (i, c) in candidates.iter().enumerate() {
            if i > 0 {
                shown.push_str("\n--   or:");
            }
            for line in c.lines() {
                shown.push_str("\n--   ");
                shown.push_str(line);
            }
        }
    }
    shown
}

/// The SQL a reviewer is shown for a portal: `shown` if the statement's
/// text needed more (`with_executed`), else the text itself.
pub(super) fn portal_sql(shown: Option<String>, sql: Option<Arc<str>>) -> String {
    shown.unwrap_or_else(|| {
        sql.map_or_else(
            || "(a statement airlock did not see prepared)".to_string(),
            |s| s.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn shown(text: &str, sql: &SqlPrepared, protocol: Option<&str>) -> String {
        with_executed(text, &classify(text), sql, |_| protocol.map(Arc::from))
    }

    #[test]
    fn an_execute_shows_every_candidate_for_its_name() {
        let mut sql = SqlPrepared::default();
        assert_eq!(
            shown("EXECUTE s1", &sql, None),
            "EXECUTE s1\n-- s1: airlock saw no statement of this name prepared"
        );
        sql.insert("s1", "PREPARE s1 AS\nDELETE FROM t");
        sql.insert("s1", "PREPARE s1 AS\nDELETE FROM t");
        assert_eq!(
            shown("EXPLAIN EXECUTE s1", &sql, None),
            "EXPLAIN EXECUTE s1\n-- s1 was prepared as:\n--   PREPARE s1 AS\n--   DELETE FROM t"
        );
        assert_eq!(
            shown("EXECUTE s1; EXECUTE s1", &sql, Some("UPDATE t SET v = 1")),
            "EXECUTE s1; EXECUTE s1\n-- s1 was prepared as one of these (whichever the server \
             accepted):\n--   PREPARE s1 AS\n--   DELETE FROM t\n--   or:\n--   UPDATE t SET v = 1"
        );
        for i in 0..10 {
            sql.insert("s1", &format!("PREPARE s1 AS SELECT {i}"));
        }
        assert_eq!(sql.sql_texts("s1").len(), 4);
        assert!(sql.contains("s1") && !sql.contains("s2"));
    }
}
