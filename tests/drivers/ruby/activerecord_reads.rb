# ActiveRecord (PostgreSQL adapter): the adapter's connection setup (its
# SET commands and type map loading from pg_type), model reads with
# associations, find_each batches, pluck over arrays, transactions, and
# schema introspection (tables, views, columns, indexes, foreign keys,
# primary keys, the model's own columns).

require 'active_record'
require 'logger'
require_relative 'steps'

ActiveRecord::Base.logger = nil
ActiveRecord::Base.default_timezone = :utc

class Person < ActiveRecord::Base
  self.table_name = 'people'
  has_many :orders, foreign_key: :person_id
end

class Order < ActiveRecord::Base
  self.table_name = 'orders'
  belongs_to :person
end

def connected
  ActiveRecord::Base.establish_connection("#{DSN}?connect_timeout=10")
  yield ActiveRecord::Base.connection
ensure
  ActiveRecord::Base.remove_connection
end

step('activerecord.connect') do
  connected do |c|
    check_eq(1, c.select_value('select 1'), 'select 1')
    check(c.active?, 'active')
  end
end

step('activerecord.model_reads') do
  connected do
    p = Person.find(3)
    check_eq('person 3', p.name, 'find')
    check_eq(%w[tag3 all], p.tags, 'array column')
    check_eq([3, 30, 300], p.scores, 'int array column')
    check_eq(3, p.profile['level'], 'jsonb')
    check(p.created_at.is_a?(Time), 'timestamptz')
    check_eq(8, Person.where('balance > ?', 50).count, 'where count')
    check_eq([5, 6, 7], Person.where('balance > ?', 50).order(:id).limit(3).pluck(:id), 'pluck')
    check_eq(4, Person.where(mood: 'calm').count, 'enum filter')
    check_eq(%w[tag1 all], Person.order(:id).pluck(:tags).first, 'pluck array')
  end
end

step('activerecord.associations') do
  connected do
    people = Person.includes(:orders).order(:id).to_a
    check_eq(40, people.sum { |x| x.orders.size }, 'includes')
    o = Order.joins(:person).where(people: { mood: 'calm' }).where('amount < ?', 20).count
    check_eq(5, o, 'joins')
    check_eq('person 6', Order.find(5).person.name, 'belongs_to')
    check_eq(BigDecimal('1025'), Order.sum(:amount), 'sum')
    check_eq(40, Order.count, 'count')
  end
end

step('activerecord.find_each') do
  connected do
    n = 0
    Order.find_each(batch_size: 7) { |_o| n += 1 }
    check_eq(40, n, 'rows in batches')
  end
end

step('activerecord.transaction') do
  connected do
    Person.transaction do
      check_eq(12, Person.count, 'count')
      Person.transaction(requires_new: true) do
        check_eq(40, Order.count, 'count in savepoint')
      end
    end
  end
end

step('activerecord.introspection') do
  connected do |c|
    check_eq(%w[orders people], c.tables.sort, 'tables')
    check_eq(%w[people_summary], c.views, 'views')
    check(c.table_exists?('people'), 'table_exists?')
    names = c.columns('people').map(&:name).sort
    check_eq(%w[balance birthday created_at extra home id mood name profile scores tags], names, 'columns')
    check_eq(%w[people_name_idx], c.indexes('people').map(&:name), 'indexes')
    check_eq('people', c.foreign_keys('orders').first.to_table, 'foreign key')
    check_eq('id', c.primary_key('people'), 'primary key')
    Person.reset_column_information
    check_eq(:decimal, Person.columns_hash['balance'].type, 'model column type')
    check(Person.columns_hash['tags'].array, 'model array column')
  end
end

finish
