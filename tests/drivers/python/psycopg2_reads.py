"""psycopg2: what the many applications still on it do on connect and for
reads: client-side parameter interpolation (a 2 MiB parameter makes a 2 MiB
statement), named (server-side) cursors, a composite type registered from
the catalog, dict cursors, COPY TO and read-only sessions.
"""

import io

import psycopg2
import psycopg2.extras

from steps import DSN, check, check_eq, finish, step


def connect():
    return psycopg2.connect(DSN, connect_timeout=10)


def connect_and_select():
    c = connect()
    try:
        cur = c.cursor()
        cur.execute("select 1")
        check_eq((1,), cur.fetchone(), "select 1")
        check(c.server_version >= 120000, "server version")
    finally:
        c.close()


def parameters():
    c = connect()
    try:
        cur = c.cursor()
        cur.execute("select name, tags, scores from people where id = %s", (3,))
        check_eq(("person 3", ["tag3", "all"], [3, 30, 300]), cur.fetchone(), "row 3")
        cur.execute("select count(*) from orders where note like %(p)s", {"p": "order 1%"})
        check(cur.fetchone()[0] > 0, "count")
    finally:
        c.close()


def large_parameter():
    # Five times, each on a connection of its own: how such a statement
    # arrives in the proxy's reads varies from run to run.
    for _ in range(5):
        c = connect()
        try:
            cur = c.cursor()
            cur.execute("select length(%s)", ("x" * 2**21,))
            check_eq((2**21,), cur.fetchone(), "length")
        finally:
            c.close()


def named_cursor():
    c = connect()
    try:
        cur = c.cursor("people_cur")
        cur.itersize = 4
        cur.execute("select id, name from people order by id")
        check_eq(12, sum(1 for _ in cur), "iterated rows")
        cur.close()
        c.rollback()
    finally:
        c.close()


def composite_and_dict_cursor():
    c = connect()
    try:
        psycopg2.extras.register_composite("address", c)
        cur = c.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        cur.execute("select home, mood, profile, created_at from people where id = 2")
        r = cur.fetchone()
        check_eq("Lyon", r["home"].city, "city")
        check_eq("away", r["mood"], "mood")
        check_eq(2, r["profile"]["level"], "jsonb")
        check(r["created_at"].tzinfo is not None, "aware timestamp")
    finally:
        c.close()


def copy_to():
    c = connect()
    try:
        cur = c.cursor()
        buf = io.StringIO()
        cur.copy_expert("COPY (select id, name from people order by id) TO STDOUT WITH CSV HEADER", buf)
        check_eq(13, buf.getvalue().count("\n"), "copied lines")
        buf = io.StringIO()
        cur.copy_to(buf, "orders", columns=("id", "amount"))
        check_eq(40, buf.getvalue().count("\n"), "copy_to lines")
    finally:
        c.close()


def read_only_session():
    c = connect()
    try:
        c.set_session(readonly=True)
        cur = c.cursor()
        cur.execute("select count(*) from people")
        check_eq((12,), cur.fetchone(), "count")
        c.commit()
        c.autocommit = True
        cur.execute("select count(*) from orders")
        check_eq((40,), cur.fetchone(), "count in autocommit")
    finally:
        c.close()


step("psycopg2.connect", connect_and_select)
step("psycopg2.parameters", parameters)
step("psycopg2.large_parameter", large_parameter)
step("psycopg2.named_cursor", named_cursor)
step("psycopg2.composite_and_dict_cursor", composite_and_dict_cursor)
step("psycopg2.copy_to", copy_to)
step("psycopg2.read_only_session", read_only_session)
finish()
