// postgres.js: on connect it fetches the array types from pg_type; ordinary
// tagged-template queries (extended protocol, prepared by default), unsafe()
// and simple() text, dynamic identifiers, read-only transactions with
// savepoints, .cursor(n, fn) and .forEach (portals read n rows at a time),
// .describe() and .values().

'use strict';

const postgres = require('postgres');
const { DSN, step, check, checkEq, closing, finish } = require('./steps');

async function withSql(fn, options = {}) {
  const sql = postgres(DSN, { max: 1, connect_timeout: 10, onnotice: () => {}, ...options });
  try {
    return await fn(sql);
  } finally {
    await closing(() => sql.end({ timeout: 2 }));
  }
}

async function main() {
  await step('postgres.connect', () => withSql(async (sql) => {
    const [r] = await sql`select 1 as one`;
    checkEq(1, r.one, 'select 1');
  }));

  await step('postgres.queries', () => withSql(async (sql) => {
    const rows = await sql`select id, name, tags, scores, profile, created_at from people where id <= ${3} order by id`;
    checkEq(3, rows.length, 'rows');
    checkEq(['tag2', 'all'], rows[1].tags, 'text[]');
    checkEq([2, 20, 200], rows[1].scores, 'int[]');
    checkEq(2, rows[1].profile.level, 'jsonb');
    check(rows[1].created_at instanceof Date, 'timestamptz');
    const ids = await sql`select name from people where id in ${sql([1, 2])} order by id`;
    checkEq(['person 1', 'person 2'], ids.map((x) => x.name), 'in list');
    const col = 'name';
    const [one] = await sql`select ${sql(col)} from ${sql('people')} where id = ${4}`;
    checkEq('person 4', one.name, 'dynamic identifiers');
    const [e] = await sql`select mood, home from people where id = ${1}`;
    checkEq('busy', e.mood, 'enum');
  }));

  await step('postgres.unprepared', () => withSql(async (sql) => {
    const rows = await sql`select count(*)::int as n from orders where amount > ${10}`;
    checkEq(32, rows[0].n, 'count');
  }, { prepare: false }));

  await step('postgres.unsafe_and_simple', () => withSql(async (sql) => {
    const r = await sql.unsafe('select name from people where id = $1', [5]);
    checkEq('person 5', r[0].name, 'unsafe with parameters');
    const s = await sql`select count(*)::int as n from people`.simple();
    checkEq(12, s[0].n, 'simple');
    const multi = await sql.unsafe('select 1 as a; select 2 as b');
    checkEq(2, multi.length, 'two statements');
  }));

  await step('postgres.describe_and_values', () => withSql(async (sql) => {
    const d = await sql`select id, name from people where id = ${1}`.describe();
    checkEq(['id', 'name'], d.columns.map((c) => c.name), 'describe columns');
    const v = await sql`select id, name from people where id = ${1}`.values();
    checkEq([[1, 'person 1']], v, 'values');
  }));

  await step('postgres.transaction', () => withSql(async (sql) => {
    const n = await sql.begin('read only', async (tx) => {
      const [a] = await tx`select count(*)::int as n from people`;
      const inner = await tx.savepoint(async (sp) => (await sp`select count(*)::int as n from orders`)[0].n);
      return a.n + inner;
    });
    checkEq(52, n, 'counts');
  }));

  await step('postgres.cursor', () => withSql(async (sql) => {
    let seen = 0;
    await sql`select id from orders where amount > ${0} order by id`.cursor(7, (rows) => {
      seen += rows.length;
    });
    checkEq(40, seen, 'rows through the cursor');
  }));

  await step('postgres.cursor_in_transaction', () => withSql(async (sql) => {
    let seen = 0;
    await sql.begin('read only', async (tx) => {
      await tx`select id, name from people where id > ${0} order by id`.cursor(5, (rows) => {
        seen += rows.length;
      });
    });
    checkEq(12, seen, 'rows through the cursor');
  }));

  await step('postgres.cursor_iterator', () => withSql(async (sql) => {
    let seen = 0;
    for await (const [row] of sql`select id from people order by id`.cursor()) {
      check(row.id > 0, 'row');
      seen += 1;
    }
    checkEq(12, seen, 'rows through the async iterator');
  }));

  await step('postgres.forEach', () => withSql(async (sql) => {
    let seen = 0;
    await sql`select id, name from people order by id`.forEach((row) => {
      check(row.name.startsWith('person'), 'row');
      seen += 1;
    });
    checkEq(12, seen, 'rows through forEach');
  }));

  finish();
}

main();
