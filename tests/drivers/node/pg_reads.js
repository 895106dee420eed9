// node-postgres (pg): what a Node application does on connect and for
// reads. Queries without parameters go out in the simple protocol, with
// parameters in the extended one; named prepared statements, rowMode
// 'array', read-only transactions, a Pool, pg-cursor and pg-query-stream
// (portals read a few rows at a time).

'use strict';

const { Client, Pool } = require('pg');
const Cursor = require('pg-cursor');
const QueryStream = require('pg-query-stream');
const { DSN, step, check, checkEq, closing, finish } = require('./steps');

async function withClient(fn) {
  const c = new Client({ connectionString: DSN, connectionTimeoutMillis: 10000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await closing(() => c.end());
  }
}

async function main() {
  await step('pg.connect', () => withClient(async (c) => {
    const r = await c.query('select 1 as one');
    checkEq([{ one: 1 }], r.rows, 'select 1');
    const v = await c.query('show server_version');
    check(/^\d+/.test(v.rows[0].server_version), 'server_version');
  }));

  await step('pg.simple_query', () => withClient(async (c) => {
    const r = await c.query('select id, tags, scores, profile, extra, created_at from people order by id');
    checkEq(12, r.rowCount, 'rows');
    checkEq(['tag1', 'all'], r.rows[0].tags, 'text[]');
    checkEq([1, 10, 100], r.rows[0].scores, 'int[]');
    checkEq(1, r.rows[0].profile.level, 'jsonb');
    checkEq('n1', r.rows[0].extra.note, 'json');
    check(r.rows[0].created_at instanceof Date, 'timestamptz as Date');
    const multi = await c.query('select count(*) from people; select count(*) from orders');
    checkEq(['12', '40'], multi.map((x) => x.rows[0].count), 'two statements in one Query');
  }));

  await step('pg.extended_query', () => withClient(async (c) => {
    const r = await c.query('select name, mood, home from people where id = $1', [2]);
    checkEq('person 2', r.rows[0].name, 'name');
    checkEq('away', r.rows[0].mood, 'enum as text');
    checkEq('("street 2",Lyon,1002)', r.rows[0].home, 'composite as text');
    const arr = await c.query({ text: 'select id, name from people where id = any($1) order by id', values: [[1, 3]], rowMode: 'array' });
    checkEq([[1, 'person 1'], [3, 'person 3']], arr.rows, 'rowMode array');
  }));

  await step('pg.named_prepared', () => withClient(async (c) => {
    for (const id of [1, 2, 3]) {
      const r = await c.query({ name: 'person-by-id', text: 'select name from people where id = $1', values: [id] });
      checkEq(`person ${id}`, r.rows[0].name, `name ${id}`);
    }
  }));

  await step('pg.read_only_transaction', () => withClient(async (c) => {
    await c.query('BEGIN READ ONLY');
    const r = await c.query('select count(*)::int as n from orders where amount > $1', [10]);
    checkEq(32, r.rows[0].n, 'count');
    await c.query('SAVEPOINT s1');
    await c.query('select 1');
    await c.query('RELEASE SAVEPOINT s1');
    await c.query('COMMIT');
  }));

  await step('pg.pool', async () => {
    const pool = new Pool({ connectionString: DSN, max: 2, connectionTimeoutMillis: 10000 });
    try {
      const all = await Promise.all([1, 2, 3, 4].map((id) => pool.query('select name from people where id = $1', [id])));
      checkEq(['person 1', 'person 2', 'person 3', 'person 4'], all.map((r) => r.rows[0].name), 'names');
    } finally {
      await closing(() => pool.end());
    }
  });

  await step('pg.cursor', () => withClient(async (c) => {
    const cursor = c.query(new Cursor('select id from orders where amount > $1 order by id', [0]));
    let seen = 0;
    for (;;) {
      const rows = await cursor.read(7);
      if (rows.length === 0) break;
      seen += rows.length;
    }
    await cursor.close();
    checkEq(40, seen, 'rows read through the cursor');
  }));

  await step('pg.query_stream', () => withClient(async (c) => {
    const stream = c.query(new QueryStream('select id, name from people order by id', [], { batchSize: 5 }));
    let n = 0;
    for await (const row of stream) {
      check(row.name.startsWith('person'), 'row');
      n += 1;
    }
    checkEq(12, n, 'streamed rows');
  }));

  await step('pg.catalog', () => withClient(async (c) => {
    const r = await c.query("select table_name from information_schema.tables where table_schema = 'public' order by 1");
    checkEq(['orders', 'people', 'people_summary'], r.rows.map((x) => x.table_name), 'tables');
    const v = await c.query('select * from people_summary where id = $1', [1]);
    checkEq('person 1', v.rows[0].name, 'view');
  }));

  finish();
}

main();
