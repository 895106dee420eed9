//! The planner's row estimate for a held UPDATE, DELETE or INSERT ... SELECT,
//! so reviewers see how many rows it would touch. It runs EXPLAIN (never
//! ANALYZE) on a connection of its own — the `estimates` conninfo, a role
//! that may `SET ROLE` to requesters — as the requesting role, inside a
//! read-only transaction that is rolled back, through the extended protocol
//! (which takes exactly one statement).

use tokio_postgres::NoTls;

use crate::classify::{Facts, Risks};

/// Whether a held statement gets an estimate: one UPDATE, DELETE, or INSERT
/// that reads a table, without parameters (PostgreSQL 15 cannot plan a
/// statement with unbound parameters), that reaches no user code. Planning
/// is not harmless: the planner folds calls of IMMUTABLE functions with
/// constant arguments (and STABLE ones when it estimates selectivity), so
/// EXPLAIN of a statement calling a user function marked IMMUTABLE would
/// run it before any reviewer decided. Built-ins only, then.
pub fn wanted(facts: &Facts, params: &[Option<String>]) -> bool {
    let [s] = facts.statements.as_slice() else {
        return false;
    };
    const CODE: Risks = Risks::NONE
        .with(Risks::USER_CODE)
        .with(Risks::UNKNOWN_FUNCTION)
        .with(Risks::UNKNOWN_OPERATOR);
    params.is_empty()
        && s.user_code.is_empty()
        && !s.risks.intersects(CODE)
        && match s.command.as_str() {
            "UPDATE" | "DELETE" => true,
            "INSERT" => !s.tables_read.is_empty(),
            _ => false,
        }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Plans `sql` as `role` and returns the top plan node's row estimate.
pub async fn rows(conninfo: &str, role: &str, sql: &str) -> Result<i64, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let result = async {
        client
            .batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL ROLE {}",
                quote_ident(role)
            ))
            .await?;
        let row = client
            .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
            .await?;
        let _ = client.batch_execute("ROLLBACK").await;
        Ok::<serde_json::Value, tokio_postgres::Error>(row.get(0))
    }
    .await
    .map_err(|e| e.to_string());
    drop(client);
    let _ = conn.await;
    let plan = result?;
    // A ModifyTable node reports 0 rows (it returns none); the rows it
    // touches are those of the plan beneath it.
    let top = plan.pointer("/0/Plan").ok_or("no plan")?;
    let node = if top["Node Type"] == "ModifyTable" {
        top.pointer("/Plans/0").unwrap_or(top)
    } else {
        top
    };
    node["Plan Rows"]
        .as_f64()
        .map(|r| r.round() as i64)
        .ok_or_else(|| "no row estimate in the plan".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    #[test]
    fn which_statements_get_an_estimate() {
        assert!(wanted(&classify("UPDATE t SET a = 1 WHERE b = 2"), &[]));
        assert!(wanted(&classify("DELETE FROM t"), &[]));
        assert!(wanted(&classify("INSERT INTO t SELECT * FROM u"), &[]));
        assert!(!wanted(&classify("INSERT INTO t VALUES (1)"), &[]));
        assert!(!wanted(
            &classify("UPDATE t SET a = $1"),
            &[Some("1".into())]
        ));
        assert!(!wanted(&classify("UPDATE t SET a = 1; DELETE FROM t"), &[]));
        assert!(!wanted(&classify("DROP TABLE t"), &[]));
        // Planning would fold a user function marked IMMUTABLE: no EXPLAIN.
        assert!(!wanted(
            &classify("UPDATE victim SET v = 1 WHERE id = imm_evil()"),
            &[]
        ));
        assert!(!wanted(&classify("DELETE FROM t WHERE a = app.f(1)"), &[]));
        assert!(!wanted(&classify("UPDATE t SET a = 1 WHERE b ~~~ 2"), &[]));
        assert!(wanted(
            &classify("UPDATE t SET a = lower('X') WHERE b = abs(-2)"),
            &[]
        ));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
