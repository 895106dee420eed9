// Sequelize (on pg): authenticate() and the type lookups of its connection
// setup, model reads with associations, raw queries with replacements,
// managed read-only transactions, and QueryInterface introspection
// (showAllTables, describeTable, showIndex, foreign keys).

'use strict';

const { Sequelize, DataTypes, Op, QueryTypes, Transaction } = require('sequelize');
const { DSN, step, check, checkEq, closing, finish } = require('./steps');

function models(sequelize) {
  const Person = sequelize.define('Person', {
    name: DataTypes.TEXT,
    tags: DataTypes.ARRAY(DataTypes.TEXT),
    scores: DataTypes.ARRAY(DataTypes.INTEGER),
    mood: DataTypes.ENUM('calm', 'busy', 'away'),
    profile: DataTypes.JSONB,
    extra: DataTypes.JSON,
    created_at: DataTypes.DATE,
    birthday: DataTypes.DATEONLY,
    balance: DataTypes.DECIMAL(12, 2),
  }, { tableName: 'people', timestamps: false });
  const Order = sequelize.define('Order', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    amount: DataTypes.DECIMAL(10, 2),
    placed_at: DataTypes.DATE,
    note: DataTypes.TEXT,
  }, { tableName: 'orders', timestamps: false });
  Person.hasMany(Order, { foreignKey: 'person_id', as: 'orders' });
  Order.belongsTo(Person, { foreignKey: 'person_id', as: 'person' });
  return { Person, Order };
}

async function withSequelize(fn) {
  const sequelize = new Sequelize(DSN, {
    logging: false,
    pool: { max: 2, min: 0, acquire: 10000 },
    dialectOptions: { connectionTimeoutMillis: 10000 },
  });
  try {
    return await fn(sequelize, models(sequelize));
  } finally {
    await closing(() => sequelize.close());
  }
}

async function main() {
  await step('sequelize.authenticate', () => withSequelize(async (sequelize) => {
    await sequelize.authenticate();
  }));

  await step('sequelize.model_reads', () => withSequelize(async (sequelize, { Person, Order }) => {
    const p = await Person.findByPk(3);
    checkEq('person 3', p.name, 'findByPk');
    checkEq(['tag3', 'all'], p.tags, 'array');
    checkEq(3, p.profile.level, 'jsonb');
    const rich = await Person.findAll({ where: { balance: { [Op.gt]: 50 } }, order: [['id', 'ASC']], limit: 3 });
    checkEq([5, 6, 7], rich.map((x) => x.id), 'findAll');
    checkEq(32, await Order.count({ where: { amount: { [Op.gt]: 10 } } }), 'count');
    const calm = await Person.findAll({ where: { mood: 'calm' }, attributes: ['id'] });
    checkEq(4, calm.length, 'enum filter');
  }));

  await step('sequelize.associations', () => withSequelize(async (sequelize, { Person, Order }) => {
    const people = await Person.findAll({ include: [{ model: Order, as: 'orders' }], order: [['id', 'ASC']] });
    checkEq(40, people.reduce((n, x) => n + x.orders.length, 0), 'include hasMany');
    const o = await Order.findOne({ where: { id: 5 }, include: [{ model: Person, as: 'person' }] });
    checkEq('person 6', o.person.name, 'include belongsTo');
  }));

  await step('sequelize.raw_query', () => withSequelize(async (sequelize) => {
    const rows = await sequelize.query('select name from people where id = :id', { replacements: { id: 2 }, type: QueryTypes.SELECT });
    checkEq([{ name: 'person 2' }], rows, 'replacements');
    const bound = await sequelize.query('select name from people_summary where id = $1', { bind: [4], type: QueryTypes.SELECT });
    checkEq('person 4', bound[0].name, 'bind');
  }));

  await step('sequelize.transaction', () => withSequelize(async (sequelize, { Person, Order }) => {
    const n = await sequelize.transaction({ isolationLevel: Transaction.ISOLATION_LEVELS.REPEATABLE_READ }, async (t) => {
      const a = await Person.count({ transaction: t });
      const b = await Order.count({ transaction: t });
      return a + b;
    });
    checkEq(52, n, 'counts');
  }));

  await step('sequelize.introspection', () => withSequelize(async (sequelize) => {
    const qi = sequelize.getQueryInterface();
    const tables = (await qi.showAllTables()).map((t) => (typeof t === 'string' ? t : t.tableName)).sort();
    checkEq(['orders', 'people'], tables, 'showAllTables');
    const cols = await qi.describeTable('people');
    checkEq(['balance', 'birthday', 'created_at', 'extra', 'home', 'id', 'mood', 'name', 'profile', 'scores', 'tags'],
      Object.keys(cols).sort(), 'describeTable');
    check(cols.id.primaryKey, 'primary key');
    checkEq(['away', 'busy', 'calm'], (cols.mood.special || []).slice().sort(), 'enum values');
    const idx = await qi.showIndex('people');
    check(idx.some((i) => i.name === 'people_name_idx'), 'showIndex');
    const fks = await qi.getForeignKeyReferencesForTable('orders');
    checkEq('people', fks[0].referencedTableName, 'foreign key');
  }));

  finish();
}

main();
