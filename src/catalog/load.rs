//! Reading one database's user-defined code from its catalog: one round
//! trip, one read-only REPEATABLE READ transaction, so every list and the
//! fingerprint describe the same moment.
//!
//! Only objects with OIDs from `FirstNormalObjectId` (16384) up are read:
//! everything below was created by initdb and is PostgreSQL's own. The
//! session sets `search_path` to `pg_catalog` alone, so the definitions
//! PostgreSQL deparses (views, CHECK constraints, policies) name every user
//! object with its schema.

use tokio_postgres::{Client, SimpleQueryMessage};

/// A statement of the fingerprint: counts and transaction ids of the rows
/// that describe user code. Any CREATE, ALTER, DROP or CREATE OR REPLACE of
/// such an object changes it; temporary objects of other sessions do not
/// (no one else can reach them), and VACUUM and ANALYZE, which update
/// `pg_class` in place, do not either.
pub const FINGERPRINT: &str = "
WITH temp_ns AS (SELECT oid FROM pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_')
SELECT concat_ws(' ',
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_proc WHERE oid >= 16384),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_operator WHERE oid >= 16384),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_class
     WHERE oid >= 16384 AND relnamespace NOT IN (SELECT oid FROM temp_ns)),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_rewrite WHERE oid >= 16384
     AND ev_class NOT IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_type
     WHERE oid >= 16384 AND typnamespace NOT IN (SELECT oid FROM temp_ns)),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_constraint WHERE contypid <> 0),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_policy),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_cast WHERE oid >= 16384),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT count(*) || ':' || coalesce(sum(a.xmin::text::bigint), 0) FROM pg_attribute a
     WHERE a.attrelid >= 16384 AND a.atttypid >= 16384 AND a.attrelid NOT IN
       (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM temp_ns))),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_namespace WHERE oid >= 16384),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_inherits),
  (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'))";

/// The queries of a full load, in the order [`Raw::from_results`] reads
/// them, after the fingerprint.
const QUERIES: &[&str] = &[
    // Functions: who may call them with one argument (attribute notation),
    // and whether an extension installed them.
    "SELECT p.oid, n.nspname, p.proname, p.provolatile, p.pronargs, p.pronargdefaults,
            EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.oid >= 16384",
    // Operators and the function behind each.
    "SELECT n.nspname, o.oprname, o.oprcode::oid, coalesce(fn.nspname, ''), coalesce(f.proname, '')
       FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
       LEFT JOIN pg_proc f ON f.oid = o.oprcode
       LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace
      WHERE o.oid >= 16384",
    // Views and their definitions.
    "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'v' AND c.oid >= 16384",
    // Foreign tables, and the partitioned or inheritance parents that scan
    // them.
    "WITH RECURSIVE up(oid) AS (
         SELECT oid FROM pg_class WHERE relkind = 'f'
         UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid)
     SELECT n.nspname, c.relname FROM up JOIN pg_class c ON c.oid = up.oid
       JOIN pg_namespace n ON n.oid = c.relnamespace",
    // Row-level security policies that filter reads.
    "SELECT n.nspname, c.relname,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname),
            pg_get_expr(p.polqual, p.polrelid)
       FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL",
    // Domains' CHECK constraints.
    "SELECT t.oid, pg_get_expr(k.conbin, 0)
       FROM pg_type t JOIN pg_constraint k ON k.contypid = t.oid
      WHERE t.typtype = 'd' AND t.oid >= 16384 AND k.contype = 'c'",
    // User types and what each contains: an array its element, a domain its
    // base, a range its subtype, a multirange its range, a composite (and
    // the row type of each table) its relation.
    "SELECT t.oid, n.nspname, t.typname, coalesce(rn.nspname, ''), coalesce(rc.relname, ''),
            t.typelem, t.typbasetype, coalesce(r.rngsubtype, 0), coalesce(m.rngtypid, 0)
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       LEFT JOIN pg_class rc ON rc.oid = t.typrelid
       LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
       LEFT JOIN pg_range r ON r.rngtypid = t.oid
       LEFT JOIN pg_range m ON m.rngmultitypid = t.oid
      WHERE t.oid >= 16384",
    // Columns of user types: the row type contains the column's type.
    "SELECT c.reltype, a.atttypid
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE a.atttypid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped AND c.reltype <> 0",
    // Casts users created that call a function.
    "SELECT k.castsource, k.casttarget, k.castfunc, fn.nspname, f.proname
       FROM pg_cast k JOIN pg_proc f ON f.oid = k.castfunc
       JOIN pg_namespace fn ON fn.oid = f.pronamespace
      WHERE k.oid >= 16384",
    // Relations with triggers of their own: writing them may run any code.
    "SELECT DISTINCT n.nspname, c.relname
       FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT g.tgisinternal",
];

/// A function users or extensions created.
#[derive(Debug, Clone)]
pub struct Function {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `i`, `s` or `v`.
    pub volatility: char,
    pub nargs: i64,
    pub nargdefaults: i64,
    pub extension: bool,
}

#[derive(Debug, Clone)]
pub struct Operator {
    pub schema: String,
    pub name: String,
    pub function: u32,
    pub function_schema: String,
    pub function_name: String,
}

#[derive(Debug, Clone)]
pub struct Named {
    pub schema: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub definition: String,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub schema: String,
    pub table: String,
    /// The table's name, quoted for SQL.
    pub quoted: String,
    pub using: String,
}

#[derive(Debug, Clone)]
pub struct Type {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The relation whose row type this is.
    pub relation: Option<Named>,
    /// Types a value of this type contains or is checked as.
    pub contains: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Cast {
    pub source: u32,
    pub target: u32,
    pub function: u32,
    pub function_schema: String,
    pub function_name: String,
}

/// Everything a load read, before any of it is judged.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub fingerprint: String,
    pub functions: Vec<Function>,
    pub operators: Vec<Operator>,
    pub views: Vec<View>,
    pub foreign: Vec<Named>,
    pub policies: Vec<Policy>,
    /// Domain OID and one CHECK expression.
    pub checks: Vec<(u32, String)>,
    pub types: Vec<Type>,
    pub casts: Vec<Cast>,
    pub triggers: Vec<Named>,
}

/// Sets that precede every load and fingerprint: deparsed names carry
/// their schema, and a catalog query never waits long.
const PREAMBLE: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL search_path = pg_catalog;
SET LOCAL statement_timeout = '30s';
SET LOCAL lock_timeout = '5s';";

/// Reads the fingerprint alone.
pub async fn fingerprint(client: &Client) -> Result<String, tokio_postgres::Error> {
    let sql = format!("{PREAMBLE}\n{FINGERPRINT};\nCOMMIT");
    let results = run(client, &sql).await?;
    Ok(results
        .get(4)
        .and_then(|rows| rows.first())
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default())
}

/// Reads everything.
pub async fn load(client: &Client) -> Result<Raw, String> {
    let mut sql = format!("{PREAMBLE}\n{FINGERPRINT};\n");
    for q in QUERIES {
        sql.push_str(q);
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT");
    let results = run(client, &sql).await.map_err(|e| e.to_string())?;
    // BEGIN and three SETs, then the fingerprint and the queries.
    let mut sets = results.into_iter().skip(4);
    let mut next = || sets.next().unwrap_or_default();
    let mut raw = Raw {
        fingerprint: next()
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default(),
        ..Raw::default()
    };
    for r in next() {
        raw.functions.push(Function {
            oid: num(&r, 0) as u32,
            schema: text(&r, 1),
            name: text(&r, 2),
            volatility: text(&r, 3).chars().next().unwrap_or('v'),
            nargs: num(&r, 4),
            nargdefaults: num(&r, 5),
            extension: text(&r, 6) == "t",
        });
    }
    for r in next() {
        raw.operators.push(Operator {
            schema: text(&r, 0),
            name: text(&r, 1),
            function: num(&r, 2) as u32,
            function_schema: text(&r, 3),
            function_name: text(&r, 4),
        });
    }
    for r in next() {
        raw.views.push(View {
            schema: text(&r, 0),
            name: text(&r, 1),
            definition: text(&r, 2),
        });
    }
    for r in next() {
        raw.foreign.push(Named {
            schema: text(&r, 0),
            name: text(&r, 1),
        });
    }
    for r in next() {
        raw.policies.push(Policy {
            schema: text(&r, 0),
            table: text(&r, 1),
            quoted: text(&r, 2),
            using: text(&r, 3),
        });
    }
    for r in next() {
        raw.checks.push((num(&r, 0) as u32, text(&r, 1)));
    }
    for r in next() {
        let relation = Some(text(&r, 4))
            .filter(|n| !n.is_empty())
            .map(|name| Named {
                schema: text(&r, 3),
                name,
            });
        raw.types.push(Type {
            oid: num(&r, 0) as u32,
            schema: text(&r, 1),
            name: text(&r, 2),
            relation,
            contains: (5..9)
                .map(|i| num(&r, i) as u32)
                .filter(|o| *o != 0)
                .collect(),
        });
    }
    let columns = next();
    for r in next() {
        raw.casts.push(Cast {
            source: num(&r, 0) as u32,
            target: num(&r, 1) as u32,
            function: num(&r, 2) as u32,
            function_schema: text(&r, 3),
            function_name: text(&r, 4),
        });
    }
    for r in next() {
        raw.triggers.push(Named {
            schema: text(&r, 0),
            name: text(&r, 1),
        });
    }
    // Row types contain their columns' types.
    let by_oid: std::collections::HashMap<u32, usize> = raw
        .types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.oid, i))
        .collect();
    for r in columns {
        let (row, column) = (num(&r, 0) as u32, num(&r, 1) as u32);
        if let Some(&i) = by_oid.get(&row) {
            raw.types[i].contains.push(column);
        }
    }
    Ok(raw)
}

type Rows = Vec<Vec<Option<String>>>;

/// Runs a multi-statement simple query; the rows of each statement.
async fn run(client: &Client, sql: &str) -> Result<Vec<Rows>, tokio_postgres::Error> {
    let mut results = Vec::new();
    let mut rows: Rows = Vec::new();
    for m in client.simple_query(sql).await? {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(_) => results.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    Ok(results)
}

fn text(r: &[Option<String>], i: usize) -> String {
    r.get(i).cloned().flatten().unwrap_or_default()
}

fn num(r: &[Option<String>], i: usize) -> i64 {
    r.get(i)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
