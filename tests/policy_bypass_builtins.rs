//! Issue 10, classes 3, 4 and 5: built-ins that are not what PostgreSQL
//! ships. SQL-language built-ins in pg_catalog and information_schema
//! replaced in place (same oid), reached directly, through an operator or
//! through a built-in view; new objects created in pg_catalog; a domain
//! named like a built-in function, which turns `f('literal')` into a cast
//! that runs its CHECK; functions and casts made extension members with
//! ALTER EXTENSION ... ADD, and extension functions replaced with CREATE OR
//! REPLACE. Each attack plants its objects directly in a database of its
//! own, shows that straight to PostgreSQL the read writes, then that
//! through airlock it changes nothing and gets an error (`planted`).

mod common;
mod planted;

use planted::{Arena, Attack};

#[tokio::test]
async fn built_ins_replaced_or_added_in_pg_catalog_are_user_code() {
    let mut arena = Arena::new();
    let attacks = vec![
        Attack::new(
            "pg_catalog.rpad(text, integer) replaced in place",
            "CREATE OR REPLACE FUNCTION pg_catalog.rpad(text, integer) RETURNS text
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.hit('rpad'); RETURN pg_catalog.rpad($1, $2, ' '); END $$;",
        )
        .simple("SELECT rpad(v, 10) FROM victim"),
        Attack::new(
            "pg_catalog.round(numeric) replaced in place",
            "CREATE OR REPLACE FUNCTION pg_catalog.round(numeric) RETURNS numeric
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.local_hit('round'); RETURN pg_catalog.round($1, 0); END $$;",
        )
        .extended("SELECT round(1.5)")
        .in_block(),
        // No function in the text: the operator integer + date.
        Attack::new(
            "pg_catalog.integer_pl_date replaced, reached by the operator +",
            "CREATE OR REPLACE FUNCTION pg_catalog.integer_pl_date(integer, date) RETURNS date
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.local_hit('int + date');
                    RETURN $2 OPERATOR(pg_catalog.+) $1; END $$;",
        )
        .simple("SELECT 7 + current_date")
        .in_block(),
        // Through a built-in view.
        Attack::new(
            "information_schema._pg_numeric_precision replaced, reached through \
             information_schema.columns",
            "CREATE OR REPLACE FUNCTION information_schema._pg_numeric_precision(
                 typid oid, typmod integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
                 $$ BEGIN PERFORM public.hit('information_schema'); RETURN NULL; END $$;",
        )
        .extended(
            "SELECT column_name, numeric_precision FROM information_schema.columns
             WHERE table_name = 'victim'",
        ),
        Attack::new(
            "pg_catalog.col_description(oid, integer) replaced in place",
            "CREATE OR REPLACE FUNCTION pg_catalog.col_description(oid, integer) RETURNS text
                 LANGUAGE plpgsql STABLE STRICT AS
                 $$ BEGIN PERFORM public.local_hit('col_description'); RETURN NULL; END $$;",
        )
        .extended("SELECT col_description('victim'::regclass, 1)")
        .in_block(),
        // A new overload in pg_catalog: an exact match beats the implicit
        // cast to upper(text).
        Attack::new(
            "new overload pg_catalog.upper(integer)",
            "CREATE FUNCTION pg_catalog.upper(integer) RETURNS text LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM public.hit('upper(int)'); RETURN $1::text; END $$;",
        )
        .simple("SELECT upper(id) FROM victim"),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

#[tokio::test]
async fn a_domain_named_like_a_function_is_not_that_function() {
    let mut arena = Arena::new();
    let attacks = vec![
        Attack::new(
            "domain public.initcap: initcap('hello') is a cast",
            "CREATE DOMAIN public.initcap AS text CHECK (public.hit('domain initcap'));",
        )
        .simple("SELECT initcap('hello')"),
        Attack::new(
            "domain public.reverse: reverse('abc') is a cast",
            "CREATE DOMAIN public.reverse AS text CHECK (public.local_hit('domain reverse'));",
        )
        .extended("SELECT reverse('abc')")
        .in_block(),
        Attack::new(
            "domain public.abs over int: abs('5') is a cast",
            "CREATE DOMAIN public.abs AS int CHECK (public.local_hit('domain abs'));",
        )
        .simple("SELECT abs('5')")
        .in_block(),
        Attack::new(
            "domain public.quote_ident nested in length()",
            "CREATE DOMAIN public.quote_ident AS text CHECK (public.hit('domain quote_ident'));",
        )
        .extended("SELECT length(quote_ident('x'))"),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}

#[tokio::test]
async fn extension_membership_is_not_a_review() {
    let mut arena = Arena::new();
    let attacks = vec![
        Attack::new(
            "ALTER EXTENSION hstore ADD FUNCTION of user code",
            "CREATE EXTENSION hstore;
             CREATE FUNCTION public.hs_keys_count(text) RETURNS int LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM public.hit('member'); RETURN 1; END $$;
             ALTER EXTENSION hstore ADD FUNCTION public.hs_keys_count(text);",
        )
        .simple("SELECT hs_keys_count('x')"),
        Attack::new(
            "hstore's akeys(hstore) replaced with CREATE OR REPLACE",
            "CREATE EXTENSION hstore;
             CREATE OR REPLACE FUNCTION public.akeys(hstore) RETURNS text[]
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.hit('akeys'); RETURN ARRAY['a']; END $$;",
        )
        .extended("SELECT akeys('a=>1'::hstore)"),
        // No function in the text: the operator = of citext.
        Attack::new(
            "citext's citext_eq replaced, reached by the operator =",
            "CREATE EXTENSION citext;
             CREATE OR REPLACE FUNCTION public.citext_eq(citext, citext) RETURNS boolean
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.local_hit('citext_eq');
                    RETURN lower($1::text) = lower($2::text); END $$;",
        )
        .simple("SELECT 'a'::citext = 'A'::citext")
        .in_block(),
        Attack::new(
            "ALTER EXTENSION citext ADD CAST (date AS text) of user code",
            "CREATE EXTENSION citext;
             CREATE FUNCTION public.d2t(date) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
                 $$ BEGIN PERFORM public.hit('extension cast');
                    RETURN pg_catalog.to_char($1, 'YYYY-MM-DD'); END $$;
             CREATE CAST (date AS text) WITH FUNCTION public.d2t(date) AS ASSIGNMENT;
             ALTER EXTENSION citext ADD CAST (date AS text);
             ALTER EXTENSION citext ADD FUNCTION public.d2t(date);",
        )
        .extended("SELECT CAST(current_date AS text)"),
        Attack::new(
            "pg_trgm's word_similarity replaced with CREATE OR REPLACE",
            "CREATE EXTENSION pg_trgm;
             CREATE OR REPLACE FUNCTION public.word_similarity(text, text) RETURNS real
                 LANGUAGE plpgsql IMMUTABLE STRICT AS
                 $$ BEGIN PERFORM public.local_hit('word_similarity'); RETURN 0.5; END $$;",
        )
        .extended("SELECT word_similarity('word', 'two words')")
        .in_block(),
    ];
    for a in attacks {
        arena.run(a).await;
    }
    arena.finish();
}
