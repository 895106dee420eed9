"""psycopg 3: what a synchronous application does on connect and for reads.

A session time zone (the setting frameworks make on connect, as SET and as
set_config), type information fetched for an enum and a composite type,
server-side cursors (DECLARE/FETCH inside the implicit transaction), COPY
TO, prepared statements (explicit and past prepare_threshold) and pipeline
mode.
"""

import datetime

import psycopg
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.enum import EnumInfo, register_enum

from steps import DSN, check, check_eq, finish, step


def connect(**kw):
    return psycopg.connect(DSN, connect_timeout=10, **kw)


def connect_and_select():
    with connect() as c:
        check_eq(1, c.execute("select 1").fetchone()[0], "select 1")
        check(c.info.server_version >= 120000, "server version")
        check_eq("UTF8", c.info.parameter_status("client_encoding"), "client_encoding")


def time_zone_startup_option():
    with connect(options="-c TimeZone=Europe/Paris") as c:
        check_eq("Europe/Paris", c.info.timezone.key, "timezone")
        ts = c.execute("select created_at from people where id = 1").fetchone()[0]
        check_eq(datetime.timedelta(hours=1), ts.utcoffset(), "offset in Paris in January")


def time_zone_set():
    with connect(autocommit=True) as c:
        c.execute("SET TIME ZONE 'Europe/Paris'")
        check_eq("Europe/Paris", c.info.timezone.key, "timezone after SET")
        c.execute("SET TimeZone TO 'UTC'")
        check_eq("UTC", c.info.parameter_status("TimeZone"), "TimeZone after SET TimeZone")


def time_zone_set_config():
    # What Django and other frameworks send through psycopg on connect.
    with connect(autocommit=True) as c:
        c.execute("SELECT set_config('TimeZone', %s, false)", ["Europe/Paris"])
        check_eq("Europe/Paris", c.info.timezone.key, "timezone after set_config")


def types_and_arrays():
    with connect() as c:
        row = c.execute(
            "select tags, scores, profile, extra, created_at, birthday, balance "
            "from people where id = %s",
            [2],
        ).fetchone()
        check_eq(["tag2", "all"], row[0], "tags")
        check_eq([2, 20, 200], row[1], "scores")
        check_eq(2, row[2]["level"], "jsonb")
        check_eq("n2", row[3]["note"], "json")
        check(row[4].tzinfo is not None, "aware timestamp")
        check_eq(datetime.date(1990, 7, 20), row[5], "birthday")


def enum_and_composite_info():
    with connect() as c:
        info = EnumInfo.fetch(c, "mood")
        check(info is not None, "EnumInfo of mood")
        register_enum(info, c)
        comp = CompositeInfo.fetch(c, "address")
        check(comp is not None, "CompositeInfo of address")
        register_composite(comp, c)
        mood, home = c.execute("select mood, home from people where id = 1").fetchone()
        check_eq("busy", mood.name, "mood")
        check_eq("Oslo", home.city, "city")
        homes = c.execute("select array_agg(home order by id) from people").fetchone()[0]
        check_eq(12, len(homes), "array of composites")


def server_side_cursor():
    with connect() as c:
        with c.cursor(name="people_cur") as cur:
            cur.itersize = 5
            cur.execute("select id, name from people order by id")
            check_eq((1, "person 1"), cur.fetchone(), "fetchone")
            check_eq(3, len(cur.fetchmany(3)), "fetchmany")
            check_eq(8, len(list(cur)), "rest")
        with c.cursor(name="scroll_cur", scrollable=True) as cur:
            cur.execute("select id from orders order by id")
            cur.scroll(10, mode="absolute")
            check_eq((11,), cur.fetchone(), "after scroll")
        c.rollback()


def server_side_cursor_with_hold():
    with connect(autocommit=True) as c:
        with c.cursor(name="hold_cur", withhold=True) as cur:
            cur.execute("select id from people order by id")
            check_eq(12, len(cur.fetchall()), "rows")


def copy_to():
    with connect() as c:
        with c.cursor() as cur:
            data = b""
            with cur.copy("COPY people (id, name, tags) TO STDOUT") as copy:
                for chunk in copy:
                    data += bytes(chunk)
            check_eq(12, data.count(b"\n"), "copied lines")
            rows = []
            with cur.copy("COPY (select id, amount from orders order by id) TO STDOUT") as copy:
                copy.set_types(["int4", "numeric"])
                rows = list(copy.rows())
            check_eq(40, len(rows), "copied rows")


def prepared_statements():
    with connect() as c:
        for i in range(1, 8):  # past prepare_threshold (5)
            r = c.execute("select name from people where id = %s", [i]).fetchone()
            check_eq(f"person {i}", r[0], f"name {i}")
        r = c.execute("select count(*) from orders where amount > %s", [5], prepare=True).fetchone()
        check(r[0] > 0, "count")


def pipeline():
    with connect() as c:
        with c.pipeline():
            curs = [c.execute("select name from people where id = %s", [i]) for i in (1, 2, 3)]
        check_eq(["person 1", "person 2", "person 3"], [k.fetchone()[0] for k in curs], "names")


def read_only_transaction():
    with connect() as c:
        c.read_only = True
        with c.transaction():
            check_eq(12, c.execute("select count(*) from people").fetchone()[0], "count")
            with c.transaction():
                check_eq(40, c.execute("select count(*) from orders").fetchone()[0], "savepoint")


step("psycopg.connect", connect_and_select)
step("psycopg.time_zone_startup_option", time_zone_startup_option)
step("psycopg.time_zone_set", time_zone_set)
step("psycopg.time_zone_set_config", time_zone_set_config)
step("psycopg.types_and_arrays", types_and_arrays)
step("psycopg.enum_and_composite_info", enum_and_composite_info)
step("psycopg.server_side_cursor", server_side_cursor)
step("psycopg.server_side_cursor_with_hold", server_side_cursor_with_hold)
step("psycopg.copy_to", copy_to)
step("psycopg.prepared_statements", prepared_statements)
step("psycopg.pipeline", pipeline)
step("psycopg.read_only_transaction", read_only_transaction)
finish()
