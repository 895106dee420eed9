//! Issue 10, classes 6 and 7: code that PostgreSQL runs from a read
//! without its text showing it. Class 6: contrib functions that run SQL
//! given as text (tablefunc's crosstab and connectby, xml2's xpath_table,
//! dblink), with the write inside the string. Class 7: extension functions
//! with SQL-string bodies (earthdistance's) resolve unqualified names with
//! the caller's search_path at run time, so a function or domain `earth`
//! in the "$user" schema, or in a schema put on the path by SET, by the
//! startup options, by ALTER DATABASE or ALTER ROLE ... SET search_path,
//! hijacks them. Each attack is shown to write straight to PostgreSQL
//! first, then to change nothing through airlock (`planted`).

mod common;
mod planted;

use planted::{Arena, Attack};

/// A dblink_exec that adds a marker row, as SQL text for inside a string
/// literal (quotes doubled once more by the caller where needed).
const DBLINK_EXEC: &str = "dblink_exec('host=127.0.0.1 port={port} user=postgres dbname={db}', \
                           'INSERT INTO public.marker (tag) VALUES (''text sql'')')";

const CONTRIB: &str = "
    CREATE EXTENSION tablefunc;
    CREATE TABLE public.tree (id text, parent text);
    INSERT INTO public.tree VALUES ('1', NULL), ('2', '1');";

#[tokio::test]
async fn functions_that_run_sql_given_as_text_are_not_reads() {
    let mut arena = Arena::new();
    let doubled = DBLINK_EXEC.replace('\'', "''");
    let mut attacks = vec![
        Attack::new("crosstab(source) running dblink_exec", CONTRIB).simple(&format!(
            "SELECT * FROM crosstab($q$SELECT 'r'::text, 'c'::text, {DBLINK_EXEC}$q$)
             AS t(r text, c text)"
        )),
        Attack::new(
            "crosstab(source, categories): a write in the category query",
            CONTRIB,
        )
        .extended(
            "SELECT * FROM crosstab('SELECT ''r''::text, ''c''::text, ''v''::text',
                     'SELECT ''c''::text WHERE public.local_hit(''crosstab categories'')')
                 AS t(r text, c text)",
        )
        .in_block(),
        Attack::new("connectby: a write in the parent key field", CONTRIB).extended(&format!(
            "SELECT * FROM connectby('public.tree', 'id', 'parent || (SELECT {doubled})', '1', 0)
             AS t(id text, parent text, level int)"
        )),
        Attack::new(
            "dblink(): a writable CTE as the remote query",
            "CREATE TABLE public.nothing (x int);",
        )
        .simple(
            "SELECT * FROM dblink('host=127.0.0.1 port={port} user=postgres dbname={db}',
                 'WITH x AS (INSERT INTO public.marker (tag) VALUES (''dblink'') RETURNING 1)
                  SELECT count(*) FROM x') AS t(n bigint)",
        )
        .in_block(),
    ];
    // xml2 is optional contrib: its attack runs where it is installed.
    let probe = common::connect(&common::direct_conninfo("postgres", "postgres")).await;
    let xml2: i64 = probe
        .query_one(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'xml2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    if xml2 == 1 {
        attacks.push(
            Attack::new(
                "xpath_table: a write in the relation argument",
                "CREATE EXTENSION xml2;
                 CREATE TABLE public.docs (id int, doc text);
                 INSERT INTO public.docs VALUES (1, '<a><b>x</b></a>');",
            )
            .simple(
                "SELECT * FROM xpath_table('id', 'doc',
                     'public.docs CROSS JOIN LATERAL (SELECT public.local_hit(''xpath_table'')) z',
                     '/a/b', 'true') AS t(id int, b text)",
            )
            .in_block(),
        );
    } else {
        eprintln!("xml2 is not installed: its xpath_table attack is skipped");
    }
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

const EARTH: &str = "CREATE EXTENSION cube; CREATE EXTENSION earthdistance;";

/// `earth()` in schema `s`, writing through dblink (or locally).
fn earth_in(s: &str, local: bool) -> String {
    let hit = if local { "local_hit" } else { "hit" };
    format!(
        "{EARTH}
         CREATE SCHEMA IF NOT EXISTS {s};
         CREATE FUNCTION {s}.earth() RETURNS float8 LANGUAGE plpgsql AS
             $$ BEGIN PERFORM public.{hit}('earth in {s}'); RETURN 6378168; END $$;"
    )
}

#[tokio::test]
async fn search_path_steering_extension_bodies_is_not_a_read() {
    let mut arena = Arena::new();
    let attacks = vec![
        // The default path, nothing set by the client: "$user" first.
        Attack::new("earth() in the \"$user\" schema hijacks gc_to_sec", &earth_in("postgres", false))
            .simple("SELECT gc_to_sec(100)"),
        Attack::new(
            "domain earth in the \"$user\" schema hijacks ll_to_earth's ::earth",
            &format!(
                "{EARTH} CREATE SCHEMA postgres;
                 CREATE DOMAIN postgres.earth AS cube CHECK (public.local_hit('earth domain'));"
            ),
        )
        .extended("SELECT cube_dim(ll_to_earth(1, 2))")
        .in_block(),
        Attack::new("SET search_path = pg_catalog, evil, public hijacks earth_box", &earth_in("evil", true))
            .simple("SET search_path = pg_catalog, evil, public")
            .extended("SELECT earth_box(ll_to_earth(0, 0), 1000) @> ll_to_earth(0, 0)")
            .in_block(),
        Attack::new("startup options search_path hijacks sec_to_gc", &earth_in("evil", false))
            .conn("options='-c search_path=pg_catalog,evil,public'")
            .simple("SELECT sec_to_gc(1)"),
        Attack::new(
            "ALTER DATABASE ... SET search_path hijacks earth_distance",
            &format!(
                "{} ALTER DATABASE {{db}} SET search_path = evil, public;",
                earth_in("evil", true)
            ),
        )
        .simple("SELECT earth_distance(ll_to_earth(0, 0), ll_to_earth(1, 1))")
        .in_block(),
        Attack::new(
            "ALTER ROLE ... IN DATABASE ... SET search_path hijacks latitude",
            &format!(
                "{} ALTER ROLE postgres IN DATABASE {{db}} SET search_path = pg_catalog, evil, public;",
                earth_in("evil", false)
            ),
        )
        .extended("SELECT latitude(ll_to_earth(10, 20))"),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}
