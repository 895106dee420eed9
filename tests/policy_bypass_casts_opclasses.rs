//! Issue 10, classes 1 and 2: user code that PostgreSQL runs from reads
//! through casts (including casts between built-in types that the text
//! never shows: implicit and assignment casts, the casts inside built-in
//! SQL bodies, EXPLAIN's constant folding) and through operator classes
//! (sorting, grouping, set operations, windows, greatest, ordered
//! aggregates, COPY (SELECT ...), index scans with a non-default opclass,
//! partition pruning). Each attack plants its objects directly in a
//! database of its own, shows that straight to PostgreSQL the read writes,
//! then that through airlock it changes nothing and gets an error
//! (`planted`).

mod common;
mod planted;

use planted::{Arena, Attack};

/// A cast int8 -> text by a user function that writes through dblink.
const CAST_INT8_TEXT: &str = "
    CREATE FUNCTION public.i8t(int8) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.hit('cast int8'); RETURN pg_catalog.format('%s', $1); END $$;
    CREATE CAST (int8 AS text) WITH FUNCTION public.i8t(int8) AS ASSIGNMENT;";

/// The same cast, writing in the caller's transaction.
const CAST_INT8_TEXT_LOCAL: &str = "
    CREATE FUNCTION public.i8t(int8) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.local_hit('cast int8'); RETURN pg_catalog.format('%s', $1); END $$;
    CREATE CAST (int8 AS text) WITH FUNCTION public.i8t(int8) AS ASSIGNMENT;";

/// An implicit cast int4 -> text: the parser inserts it where a text is
/// wanted and an int4 given.
const CAST_INT4_TEXT_IMPLICIT: &str = "
    CREATE FUNCTION public.i4t(int4) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.hit('cast int4'); RETURN pg_catalog.format('%s', $1); END $$;
    CREATE CAST (int4 AS text) WITH FUNCTION public.i4t(int4) AS IMPLICIT;";

const CAST_INT4_TEXT_IMPLICIT_LOCAL: &str = "
    CREATE FUNCTION public.i4t(int4) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.local_hit('cast int4'); RETURN pg_catalog.format('%s', $1); END $$;
    CREATE CAST (int4 AS text) WITH FUNCTION public.i4t(int4) AS IMPLICIT;";

/// A cast date -> text.
const CAST_DATE_TEXT: &str = "
    CREATE FUNCTION public.d2t(date) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.hit('cast date'); RETURN pg_catalog.to_char($1, 'YYYY-MM-DD'); END $$;
    CREATE CAST (date AS text) WITH FUNCTION public.d2t(date) AS ASSIGNMENT;";

#[tokio::test]
async fn casts_backed_by_user_functions_are_not_reads() {
    let mut arena = Arena::new();
    let attacks = vec![
        // textanycat(text, anynonarray) is `$1 || $2::text`: the cast is in
        // a built-in's body, not in the text.
        Attack::new(
            "cast in textanycat's body ('total: ' || count(*))",
            CAST_INT8_TEXT,
        )
        .simple("SELECT 'total: ' || count(*) FROM victim"),
        // quote_nullable(anyelement) casts its argument to text.
        Attack::new("cast in quote_nullable's body", CAST_INT8_TEXT)
            .simple("SELECT quote_nullable(count(*)) FROM victim"),
        // text = int4: the parser coerces id to text, implicitly.
        Attack::new("implicit cast in WHERE (v = id)", CAST_INT4_TEXT_IMPLICIT)
            .extended("SELECT v FROM victim WHERE v = id"),
        // upper(text) of an int4 column: an implicit cast per row.
        Attack::new(
            "implicit cast in a function argument (upper(id))",
            CAST_INT4_TEXT_IMPLICIT_LOCAL,
        )
        .simple("SELECT upper(id) FROM victim")
        .in_block(),
        // EXPLAIN without ANALYZE folds the IMMUTABLE cast of a constant.
        Attack::new("EXPLAIN folds an immutable user cast", CAST_INT8_TEXT_LOCAL)
            .extended("EXPLAIN SELECT * FROM victim WHERE v = 12345::int8::text")
            .in_block(),
        Attack::new("explicit CAST(date AS text)", CAST_DATE_TEXT)
            .extended("SELECT CAST(DATE '2020-01-01' AS text)"),
        // An array cast runs the element cast.
        Attack::new("array cast date[] -> text[]", CAST_DATE_TEXT)
            .simple("SELECT ARRAY[current_date]::text[]")
            .in_block(),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

/// A DEFAULT btree opclass for `point` (PostgreSQL has none), in a schema
/// that is not on the search path: every comparison writes through dblink.
const POINT_OPCLASS: &str = "
    CREATE SCHEMA opx;
    CREATE FUNCTION opx.pt_cmp(point, point) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        PERFORM public.hit('cmp');
        RETURN CASE WHEN $1[0] < $2[0] THEN -1 WHEN $1[0] > $2[0] THEN 1 ELSE 0 END;
    END $$;
    CREATE FUNCTION opx.pt_lt(point, point) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN PERFORM public.hit('lt'); RETURN $1[0] < $2[0]; END $$;
    CREATE FUNCTION opx.pt_le(point, point) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN PERFORM public.hit('le'); RETURN $1[0] <= $2[0]; END $$;
    CREATE FUNCTION opx.pt_eq(point, point) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN PERFORM public.hit('eq'); RETURN $1[0] = $2[0]; END $$;
    CREATE FUNCTION opx.pt_ge(point, point) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN PERFORM public.hit('ge'); RETURN $1[0] >= $2[0]; END $$;
    CREATE FUNCTION opx.pt_gt(point, point) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN PERFORM public.hit('gt'); RETURN $1[0] > $2[0]; END $$;
    CREATE OPERATOR opx.< (LEFTARG = point, RIGHTARG = point, FUNCTION = opx.pt_lt);
    CREATE OPERATOR opx.<= (LEFTARG = point, RIGHTARG = point, FUNCTION = opx.pt_le);
    CREATE OPERATOR opx.= (LEFTARG = point, RIGHTARG = point, FUNCTION = opx.pt_eq);
    CREATE OPERATOR opx.>= (LEFTARG = point, RIGHTARG = point, FUNCTION = opx.pt_ge);
    CREATE OPERATOR opx.> (LEFTARG = point, RIGHTARG = point, FUNCTION = opx.pt_gt);
    CREATE OPERATOR CLASS opx.pt_ops DEFAULT FOR TYPE point USING btree AS
        OPERATOR 1 opx.<, OPERATOR 2 opx.<=, OPERATOR 3 opx.=,
        OPERATOR 4 opx.>=, OPERATOR 5 opx.>,
        FUNCTION 1 opx.pt_cmp(point, point);
    CREATE TABLE public.pts (p point);
    INSERT INTO public.pts VALUES (point(3,1)), (point(1,2)), (point(2,3)), (point(1,2));";

#[tokio::test]
async fn a_default_opclass_of_user_code_is_not_a_read() {
    let mut arena = Arena::new();
    let p = POINT_OPCLASS;
    let attacks = vec![
        Attack::new("opclass: ORDER BY", p).simple("SELECT p FROM pts ORDER BY p"),
        Attack::new("opclass: DISTINCT", p).extended("SELECT DISTINCT p FROM pts"),
        Attack::new("opclass: window PARTITION BY", p)
            .simple("SELECT row_number() OVER (PARTITION BY p) FROM pts")
            .in_block(),
        Attack::new("opclass: INTERSECT", p)
            .extended("SELECT p FROM pts INTERSECT SELECT p FROM pts")
            .in_block(),
        Attack::new("opclass: greatest()", p).simple("SELECT greatest(point(1,2), point(3,4))"),
        Attack::new("opclass: GROUP BY", p).extended("SELECT p[0], count(*) FROM pts GROUP BY p"),
        Attack::new("opclass: count(DISTINCT)", p)
            .simple("SELECT count(DISTINCT p) FROM pts")
            .in_block(),
        Attack::new("opclass: ordered aggregate array_agg(p ORDER BY p)", p)
            .extended("SELECT array_agg(p ORDER BY p) FROM pts"),
        Attack::new("opclass: COPY (SELECT ... ORDER BY) TO STDOUT", p)
            .copy_out("COPY (SELECT p FROM pts ORDER BY p) TO STDOUT"),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

/// A non-default btree opclass on plain int4: the built-in operators with
/// a user comparison function, which writes when it compares the probe
/// value 424242. Only an index and a partition key use it.
const INT4_OPCLASS: &str = "
    CREATE SCHEMA opx;
    CREATE FUNCTION opx.i4cmp(int4, int4) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        IF $1 = 424242 OR $2 = 424242 THEN PERFORM public.hit('int4 cmp'); END IF;
        RETURN pg_catalog.btint4cmp($1, $2);
    END $$;
    CREATE OPERATOR CLASS opx.i4_ops FOR TYPE int4 USING btree AS
        OPERATOR 1 pg_catalog.<, OPERATOR 2 pg_catalog.<=, OPERATOR 3 pg_catalog.=,
        OPERATOR 4 pg_catalog.>=, OPERATOR 5 pg_catalog.>,
        FUNCTION 1 opx.i4cmp(int4, int4);
    CREATE TABLE public.big (x int4 NOT NULL, pad text);
    INSERT INTO public.big SELECT g, 'pad' FROM generate_series(1, 20000) g;
    CREATE INDEX big_x ON public.big (x opx.i4_ops);
    ANALYZE public.big;
    CREATE TABLE public.parts (x int4 NOT NULL) PARTITION BY RANGE (x opx.i4_ops);
    CREATE TABLE public.parts_a PARTITION OF public.parts FOR VALUES FROM (0) TO (1000);
    CREATE TABLE public.parts_b PARTITION OF public.parts FOR VALUES FROM (1000) TO (1000000);
    INSERT INTO public.parts VALUES (1), (2000);";

#[tokio::test]
async fn index_scans_and_partition_pruning_with_a_user_opclass_are_not_reads() {
    let mut arena = Arena::new();
    let p = INT4_OPCLASS;
    let attacks = vec![
        Attack::new("non-default opclass: index scan", p)
            .simple("SELECT * FROM big WHERE x = 424242"),
        Attack::new("non-default opclass: index scan", p)
            .extended("SELECT pad FROM big WHERE x = 424242")
            .in_block(),
        Attack::new("non-default opclass: partition pruning", p)
            .extended("SELECT * FROM parts WHERE x = 424242"),
        Attack::new("non-default opclass: partition pruning in EXPLAIN", p)
            .simple("EXPLAIN SELECT * FROM parts WHERE x = 424242")
            .in_block(),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

/// User types that only use built-in code, and views over immutable
/// built-ins: nothing here runs user code, so these stay reads. One table
/// per type, so that a hold names the type that caused it.
const SAFE_TYPES: &str = "
    CREATE EXTENSION pg_trgm;
    CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TYPE public.pair AS (a int, b text);
    CREATE TYPE public.floatrange AS RANGE (subtype = float8);
    CREATE DOMAIN public.posint AS int CHECK (VALUE > 0 AND VALUE < 1000000);
    CREATE TABLE public.ranges AS SELECT g AS id, int4range(g, g + 3) AS r
        FROM generate_series(1, 6) g;
    CREATE TABLE public.moods AS
        SELECT g AS id, (ARRAY['sad','ok','happy'])[1 + g % 3]::public.mood AS m
        FROM generate_series(1, 6) g;
    CREATE TABLE public.pairs AS SELECT g AS id, ROW(g, 'b' || g)::public.pair AS p
        FROM generate_series(1, 6) g;
    CREATE TABLE public.floats AS SELECT g AS id, public.floatrange(g, g + 0.5) AS f
        FROM generate_series(1, 6) g;
    CREATE TABLE public.posints (id int, d public.posint);
    INSERT INTO public.posints SELECT g, g FROM generate_series(1, 6) g;
    CREATE VIEW public.safe_view AS
        SELECT id, lower(v) AS l, length(v) AS n, md5(v) AS h FROM public.victim;";

#[tokio::test]
async fn real_reads_over_safe_user_types_still_pass_unheld() {
    let mut arena = Arena::new();
    arena
        .reads_pass(
            SAFE_TYPES,
            &[
                "SELECT r FROM ranges WHERE r @> 4 ORDER BY r",
                "SELECT DISTINCT r FROM ranges",
                "SELECT int4range(1, 10) * r FROM ranges GROUP BY r",
                "SELECT m, count(*) FROM moods GROUP BY m ORDER BY m",
                "SELECT max(m), min(m) FROM moods",
                "SELECT id FROM moods WHERE m > 'sad' ORDER BY m DESC, id",
                "SELECT p FROM pairs ORDER BY p",
                "SELECT (p).b FROM pairs WHERE p > ROW(2, 'b2')::pair",
                "SELECT f FROM floats ORDER BY f",
                "SELECT d FROM posints WHERE d > 2 ORDER BY d",
                "SELECT 42::posint",
                "SELECT * FROM safe_view ORDER BY l",
                "SELECT similarity('word', 'words')",
                "SELECT v, similarity(v, 'row 3') FROM victim ORDER BY 2 DESC",
            ],
        )
        .await;
    arena.finish();
}

/// A cast int8 -> text that writes through dblink for every session, not
/// only the attacker's: the proxy's own catalog reads (its fingerprint
/// query concatenates numbers with text) must not run it.
const CAST_INT8_TEXT_UNGATED: &str = "
    CREATE FUNCTION public.i8t_any(int8) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        PERFORM public.dblink_exec(
            'host=127.0.0.1 port={port} user=postgres dbname={db}',
            'INSERT INTO public.marker (tag) VALUES (''catalog poll'')');
        RETURN pg_catalog.format('%s', $1);
    END $$;
    CREATE CAST (int8 AS text) WITH FUNCTION public.i8t_any(int8) AS ASSIGNMENT;";

#[tokio::test]
async fn the_proxys_own_catalog_reads_run_no_planted_cast() {
    let mut arena = Arena::new();
    let fresh = planted::Fresh::new().await;
    let before = fresh.state().await;
    fresh
        .plant(CAST_INT8_TEXT_UNGATED)
        .await
        .expect("plant the cast");
    // The control: the cast writes from any session.
    fresh
        .admin
        .batch_execute("SELECT 'n=' || 1::int8")
        .await
        .expect("control");
    let control = fresh.state().await;
    assert_ne!(
        control, before,
        "CONTROL BROKEN: the ungated cast wrote nothing"
    );
    // A session through the proxy that sends nothing but SELECT 1: the
    // proxy loads and polls the catalog of the database meanwhile.
    let client = arena.proxy.connect("postgres", &fresh.name).await;
    let _ = client.simple_query("SELECT 1").await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let _ = client.simple_query("SELECT 1").await;
    let after = fresh.state().await;
    arena.attempts += 1;
    if after != control {
        arena.fail(format!(
            "LEAK the proxy's own catalog queries ran the planted int8 -> text cast \
             (it wrote through dblink): {control:?} -> {after:?}"
        ));
    }
    drop(client);
    fresh.drop().await;
    arena.finish();
}

/// A base type (I/O by PostgreSQL's own int4in/int4out) whose typmod_in is
/// PL/pgSQL that writes: parse analysis of `bt(n)` calls it, and in the
/// extended protocol parse analysis happens at Parse, before the Bind where
/// a statement waits for review.
const TYPMOD_IN: &str = "
    CREATE TYPE public.bt;
    CREATE FUNCTION public.bt_in(cstring) RETURNS public.bt
        LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
    CREATE FUNCTION public.bt_out(public.bt) RETURNS cstring
        LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
    CREATE FUNCTION public.bt_tm(cstring[]) RETURNS int4 LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.hit('typmod_in'); RETURN 4; END $$;
    CREATE TYPE public.bt (input = public.bt_in, output = public.bt_out,
        internallength = 4, passedbyvalue, alignment = int4, typmod_in = public.bt_tm);";

/// The same, writing in the caller's own transaction.
const TYPMOD_IN_LOCAL: &str = "
    CREATE TYPE public.bt;
    CREATE FUNCTION public.bt_in(cstring) RETURNS public.bt
        LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
    CREATE FUNCTION public.bt_out(public.bt) RETURNS cstring
        LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
    CREATE FUNCTION public.bt_tm(cstring[]) RETURNS int4 LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN PERFORM public.local_hit('typmod_in'); RETURN 4; END $$;
    CREATE TYPE public.bt (input = public.bt_in, output = public.bt_out,
        internallength = 4, passedbyvalue, alignment = int4, typmod_in = public.bt_tm);";

#[tokio::test]
async fn type_code_that_runs_at_parse_never_runs_unreviewed() {
    let mut arena = Arena::new();
    let attacks = vec![
        Attack::new("typmod_in of a cast, at Parse", TYPMOD_IN).extended("SELECT NULL::bt(3)"),
        Attack::new("typmod_in of CAST(... AS bt(n)), at Parse", TYPMOD_IN_LOCAL)
            .extended("SELECT CAST('5'::text::int4::text AS bt(4)) IS NULL")
            .in_block(),
        Attack::new("typmod_in of an array of it, at Parse", TYPMOD_IN)
            .extended("SELECT count(*) FROM victim WHERE NULL::bt(2)[] IS NULL"),
        Attack::new("typmod_in, simple protocol", TYPMOD_IN_LOCAL)
            .simple("SELECT NULL::bt(3)")
            .in_block(),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}
