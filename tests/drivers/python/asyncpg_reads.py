"""asyncpg: what an asyncio application does on connect and for reads.

Enums, composite types and arrays of them make asyncpg introspect the
types on first use (its own catalog queries, with jit turned off around
them); prepared statements, cursors iterated inside read-only transactions,
COPY TO and a pool, whose release resets the session.
"""

import asyncio
import io

import asyncpg

from steps import DSN, astep, check, check_eq, finish


async def connect():
    return await asyncpg.connect(DSN, timeout=10)


async def connect_and_select():
    c = await connect()
    try:
        check_eq(1, await c.fetchval("select 1"), "select 1")
        check(c.get_server_version().major >= 12, "server version")
    finally:
        await c.close()


async def builtin_arrays():
    c = await connect()
    try:
        rows = await c.fetch("select id, tags, scores from people order by id")
        check_eq(12, len(rows), "rows")
        check_eq(["tag1", "all"], rows[0]["tags"], "tags of 1")
        check_eq([1, 10, 100], rows[0]["scores"], "scores of 1")
    finally:
        await c.close()


async def enum_and_composite():
    c = await connect()
    try:
        rows = await c.fetch("select mood, home from people order by id")
        check_eq("busy", rows[0]["mood"], "mood of 1")
        check_eq("Oslo", rows[0]["home"]["city"], "city of 1")
        check_eq(1001, rows[0]["home"]["zip"], "zip of 1")
    finally:
        await c.close()


async def arrays_of_enums_and_composites():
    c = await connect()
    try:
        moods = await c.fetchval("select array_agg(mood order by id) from people")
        check_eq(12, len(moods), "moods")
        homes = await c.fetchval("select array_agg(home order by id) from people")
        check_eq("street 2", homes[1]["street"], "street of 2")
        row = await c.fetchrow(
            "select $1::mood as m, $2::address as a", "calm", ("s", "c", 7)
        )
        check_eq("calm", row["m"], "enum parameter")
        check_eq(7, row["a"]["zip"], "composite parameter")
    finally:
        await c.close()


async def json_and_timestamps():
    c = await connect()
    try:
        row = await c.fetchrow(
            "select profile, extra, created_at, birthday, balance from people where id = $1", 3
        )
        check('"level": 3' in row["profile"], f"profile {row['profile']}")
        check(row["created_at"].tzinfo is not None, "created_at is aware")
        check_eq("2024-01-05T06:04:05+00:00", row["created_at"].isoformat(), "created_at")
        check_eq("37.50", str(row["balance"]), "balance")
    finally:
        await c.close()


async def prepared_statements():
    c = await connect()
    try:
        stmt = await c.prepare("select name, mood from people where id = $1")
        check_eq(["name", "mood"], [a.name for a in stmt.get_attributes()], "attributes")
        for i in (1, 2, 3):
            check_eq(f"person {i}", (await stmt.fetchrow(i))["name"], f"name {i}")
        check_eq("person 4", await stmt.fetchval(4), "fetchval")
        many = await c.fetch("select count(*) from orders where person_id = $1", 5)
        check_eq(1, len(many), "count rows")
        # the statement cache: the same text again
        for _ in range(3):
            await c.fetchval("select count(*) from orders where amount > $1", 10)
    finally:
        await c.close()


async def cursor_in_transaction():
    c = await connect()
    try:
        names = []
        async with c.transaction(readonly=True, isolation="repeatable_read"):
            async for r in c.cursor("select name from people order by id", prefetch=5):
                names.append(r["name"])
            cur = await c.cursor("select id from orders order by id")
            first = await cur.fetch(3)
            check_eq([1, 2, 3], [r["id"] for r in first], "cursor.fetch")
            await cur.forward(10)
            check_eq(14, (await cur.fetchrow())["id"], "after forward")
        check_eq(12, len(names), "iterated rows")
    finally:
        await c.close()


async def nested_transaction():
    c = await connect()
    try:
        async with c.transaction():
            check_eq(12, await c.fetchval("select count(*) from people"), "outer")
            async with c.transaction():
                check_eq(40, await c.fetchval("select count(*) from orders"), "savepoint")
    finally:
        await c.close()


async def copy_to():
    c = await connect()
    try:
        buf = io.BytesIO()
        await c.copy_from_query("select id, name from people order by id", output=buf)
        check_eq(12, buf.getvalue().count(b"\n"), "copied lines")
        buf = io.BytesIO()
        await c.copy_from_table("orders", output=buf, format="csv")
        check_eq(40, buf.getvalue().count(b"\n"), "copied orders")
    finally:
        await c.close()


async def pool():
    p = await asyncpg.create_pool(DSN, min_size=1, max_size=2, timeout=10)
    try:
        for _ in range(3):
            async with p.acquire() as c:
                check_eq(12, await c.fetchval("select count(*) from people"), "count")
        check_eq("person 1", await p.fetchval("select name from people where id = 1"), "pool.fetchval")
    finally:
        await p.close()


async def view_and_catalog():
    c = await connect()
    try:
        rows = await c.fetch("select * from people_summary order by id")
        check_eq(12, len(rows), "summary rows")
        tables = await c.fetch(
            "select table_name from information_schema.tables "
            "where table_schema = 'public' order by 1"
        )
        check_eq(["orders", "people", "people_summary"], [r[0] for r in tables], "tables")
    finally:
        await c.close()


def main():
    loop = asyncio.new_event_loop()
    astep(loop, "asyncpg.connect", connect_and_select)
    astep(loop, "asyncpg.builtin_arrays", builtin_arrays)
    astep(loop, "asyncpg.enum_and_composite", enum_and_composite)
    astep(loop, "asyncpg.arrays_of_enums_and_composites", arrays_of_enums_and_composites)
    astep(loop, "asyncpg.json_and_timestamps", json_and_timestamps)
    astep(loop, "asyncpg.prepared_statements", prepared_statements)
    astep(loop, "asyncpg.cursor_in_transaction", cursor_in_transaction)
    astep(loop, "asyncpg.nested_transaction", nested_transaction)
    astep(loop, "asyncpg.copy_to", copy_to)
    astep(loop, "asyncpg.pool", pool)
    astep(loop, "asyncpg.view_and_catalog", view_and_catalog)
    finish()


main()
