// knex (on pg): query-builder reads, joins and aggregates, raw queries,
// read-only transactions, streams, and its schema introspection
// (hasTable, hasColumn, columnInfo).

'use strict';

const Knex = require('knex');
const { DSN, step, check, checkEq, closing, finish } = require('./steps');

async function withKnex(fn) {
  const knex = Knex({ client: 'pg', connection: DSN, pool: { min: 0, max: 2 }, acquireConnectionTimeout: 10000 });
  try {
    return await fn(knex);
  } finally {
    await closing(() => knex.destroy());
  }
}

async function main() {
  await step('knex.connect', () => withKnex(async (knex) => {
    const r = await knex.raw('select 1 as one');
    checkEq(1, r.rows[0].one, 'select 1');
  }));

  await step('knex.builder_reads', () => withKnex(async (knex) => {
    const p = await knex('people').select('name', 'tags').where('id', 3).first();
    checkEq('person 3', p.name, 'first');
    checkEq(['tag3', 'all'], p.tags, 'array');
    const rows = await knex('people').where('balance', '>', 50).orderBy('id').limit(3).offset(1);
    checkEq([6, 7, 8], rows.map((r) => r.id), 'where/orderBy/limit/offset');
    const [{ n }] = await knex('orders').count({ n: '*' }).where('amount', '>', 10);
    checkEq('32', n, 'count');
    const joined = await knex('orders as o').join('people as p', 'p.id', 'o.person_id')
      .select('p.name').sum({ total: 'o.amount' }).groupBy('p.name').orderBy('p.name');
    checkEq(12, joined.length, 'join/groupBy');
    const inList = await knex('people').whereIn('id', [1, 2]).pluck('name');
    checkEq(['person 1', 'person 2'], inList.sort(), 'whereIn/pluck');
  }));

  await step('knex.raw', () => withKnex(async (knex) => {
    const r = await knex.raw('select name from people where id = ? and mood = ?', [1, 'busy']);
    checkEq('person 1', r.rows[0].name, 'raw with bindings');
    const v = await knex('people_summary').where({ id: 2 }).first();
    checkEq('person 2', v.name, 'view');
  }));

  await step('knex.transaction', () => withKnex(async (knex) => {
    const n = await knex.transaction(async (trx) => {
      const [{ c }] = await trx('people').count({ c: 'id' });
      const inner = await trx.transaction(async (t2) => (await t2('orders').count({ c: 'id' }))[0].c);
      return Number(c) + Number(inner);
    }, { readOnly: true });
    checkEq(52, n, 'counts');
  }));

  await step('knex.stream', () => withKnex(async (knex) => {
    let n = 0;
    for await (const row of knex('orders').select('id').orderBy('id').stream()) {
      check(row.id > 0, 'row');
      n += 1;
    }
    checkEq(40, n, 'streamed rows');
  }));

  await step('knex.introspection', () => withKnex(async (knex) => {
    check(await knex.schema.hasTable('people'), 'hasTable people');
    check(!(await knex.schema.hasTable('nope')), 'hasTable nope');
    check(await knex.schema.hasColumn('orders', 'placed_at'), 'hasColumn');
    const info = await knex('people').columnInfo();
    checkEq(['balance', 'birthday', 'created_at', 'extra', 'home', 'id', 'mood', 'name', 'profile', 'scores', 'tags'],
      Object.keys(info).sort(), 'columnInfo');
    checkEq('ARRAY', info.tags.type, 'type of tags');
    const one = await knex('orders').columnInfo('amount');
    checkEq('numeric', one.type, 'columnInfo of one column');
  }));

  finish();
}

main();
