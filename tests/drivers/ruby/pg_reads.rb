# ruby-pg: exec (simple protocol), exec_params and prepare/exec_prepared
# (extended), the basic type maps (which read pg_type on creation),
# single-row mode, COPY TO and transactions.

require 'pg'
require_relative 'steps'

def connect
  c = PG.connect(DSN, connect_timeout: 10)
  return c unless block_given?

  begin
    yield c
  ensure
    c.close
  end
end

step('ruby-pg.connect') do
  connect do |c|
    check_eq('1', c.exec('select 1').getvalue(0, 0), 'select 1')
    check(c.server_version >= 120_000, 'server version')
  end
end

step('ruby-pg.exec') do
  connect do |c|
    r = c.exec('select id, name, tags from people order by id')
    check_eq(12, r.ntuples, 'rows')
    check_eq('{tag1,all}', r[0]['tags'], 'tags as text')
    multi = c.exec('select count(*) from people; select count(*) from orders')
    check_eq('40', multi.getvalue(0, 0), 'last result of two statements')
  end
end

step('ruby-pg.exec_params') do
  connect do |c|
    r = c.exec_params('select name, mood from people where id = $1', [2])
    check_eq({ 'name' => 'person 2', 'mood' => 'away' }, r[0], 'row')
    b = c.exec_params('select id from people where id = $1', [3], 1)
    check_eq([3].pack('N'), b.getvalue(0, 0), 'binary result')
  end
end

step('ruby-pg.prepare') do
  connect do |c|
    c.prepare('person_by_id', 'select name from people where id = $1')
    (1..3).each do |i|
      check_eq("person #{i}", c.exec_prepared('person_by_id', [i]).getvalue(0, 0), "name #{i}")
    end
    d = c.describe_prepared('person_by_id')
    check_eq(1, d.nparams, 'nparams')
  end
end

step('ruby-pg.type_maps') do
  connect do |c|
    c.type_map_for_results = PG::BasicTypeMapForResults.new(c)
    c.type_map_for_queries = PG::BasicTypeMapForQueries.new(c)
    r = c.exec_params('select tags, scores, created_at, balance, profile from people where id = $1', [4])
    row = r[0]
    check_eq(%w[tag4 all], row['tags'], 'text[]')
    check_eq([4, 40, 400], row['scores'], 'int[]')
    check(row['created_at'].is_a?(Time), 'timestamptz as Time')
    check_eq(4, row['profile']['level'], 'jsonb')
  end
end

step('ruby-pg.single_row_mode') do
  connect do |c|
    c.send_query('select id from orders order by id')
    c.set_single_row_mode
    n = 0
    loop do
      res = c.get_result or break
      res.check
      n += res.ntuples
      res.clear
    end
    check_eq(40, n, 'rows one at a time')
  end
end

step('ruby-pg.copy_to') do
  connect do |c|
    lines = []
    c.copy_data('COPY people (id, name) TO STDOUT') do
      while (line = c.get_copy_data)
        lines << line
      end
    end
    check_eq(12, lines.size, 'copied lines')
  end
end

step('ruby-pg.transaction') do
  connect do |c|
    c.transaction do |t|
      t.exec('SET TRANSACTION READ ONLY')
      check_eq('12', t.exec('select count(*) from people').getvalue(0, 0), 'count')
      t.exec('DECLARE c CURSOR FOR select id from orders order by id')
      check_eq(5, t.exec('FETCH 5 FROM c').ntuples, 'fetch from cursor')
      t.exec('CLOSE c')
    end
  end
end

finish
