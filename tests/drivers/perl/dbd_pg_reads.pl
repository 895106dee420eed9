#!/usr/bin/perl
# DBI with DBD::Pg: selectall with placeholders (server-side prepared
# statements, DBD::Pg's default), prepare once and execute many, arrays
# returned as array references, DBI's catalog methods (table_info,
# column_info, primary_key_info, foreign_key_info), COPY TO, a cursor in a
# transaction, and DBIx::Class::Schema::Loader dumping a schema from the
# catalog.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use File::Temp qw(tempdir);
use Steps;

step('dbd-pg.connect', sub {
    my $dbh = connect_db();
    check_eq(1, $dbh->selectrow_array('select 1'), 'select 1');
    check($dbh->{pg_server_version} >= 120000, 'server version');
    $dbh->disconnect;
});

step('dbd-pg.selectall_placeholders', sub {
    my $dbh = connect_db();
    my $rows = $dbh->selectall_arrayref(
        'select id, name, tags, scores from people where balance > ? and mood <> ? order by id',
        { Slice => {} }, 50, 'away');
    check_eq(5, scalar @$rows, 'rows');
    check_eq('person 7', $rows->[1]{name}, 'name');
    check_eq('tag7,all', join(',', @{ $rows->[1]{tags} }), 'text[] as array ref');
    check_eq(700, $rows->[1]{scores}[2], 'int[] as array ref');
    my $h = $dbh->selectall_hashref('select id, name from people where id < ?', 'id', undef, 4);
    check_eq('person 3', $h->{3}{name}, 'selectall_hashref');
    my $col = $dbh->selectcol_arrayref('select name from people_summary where orders > ? order by id', undef, 3);
    check(@$col > 0, 'selectcol_arrayref on the view');
    $dbh->disconnect;
});

step('dbd-pg.prepare_execute', sub {
    my $dbh = connect_db();
    my $sth = $dbh->prepare('select name, profile, created_at from people where id = ?');
    for my $i (1 .. 5) {
        $sth->execute($i);
        my $r = $sth->fetchrow_hashref;
        check_eq("person $i", $r->{name}, "name $i");
        check($r->{profile} =~ /"level": $i/, "profile $i");
    }
    $sth->finish;
    my $count = $dbh->prepare('select count(*) from orders where amount > $1');
    $count->execute(10);
    check_eq(32, ($count->fetchrow_array)[0], 'count with $1');
    $dbh->disconnect;
});

step('dbd-pg.catalog_methods', sub {
    my $dbh = connect_db();
    my $tables = $dbh->table_info(undef, 'public', '%', 'TABLE')->fetchall_arrayref({});
    check_eq('orders,people', join(',', sort map { $_->{TABLE_NAME} } @$tables), 'table_info');
    my $cols = $dbh->column_info(undef, 'public', 'people', '%')->fetchall_arrayref({});
    check_eq(11, scalar @$cols, 'column_info');
    my @pk = $dbh->primary_key(undef, 'public', 'people');
    check_eq('id', join(',', @pk), 'primary_key');
    my $fk = $dbh->foreign_key_info(undef, 'public', 'people', undef, 'public', 'orders')->fetchall_arrayref({});
    check_eq('person_id', $fk->[0]{FK_COLUMN_NAME}, 'foreign_key_info');
    my @names = $dbh->tables(undef, 'public', undef, 'VIEW');
    check(grep({ /people_summary/ } @names), 'tables VIEW');
    $dbh->disconnect;
});

step('dbd-pg.copy_to', sub {
    my $dbh = connect_db();
    $dbh->do('COPY (select id, name from people order by id) TO STDOUT');
    my ($line, @lines);
    push @lines, $line while $dbh->pg_getcopydata($line) >= 0;
    check_eq(12, scalar @lines, 'copied lines');
    $dbh->disconnect;
});

step('dbd-pg.cursor_in_transaction', sub {
    my $dbh = connect_db(AutoCommit => 0);
    $dbh->do('DECLARE c CURSOR FOR select id from orders order by id');
    my $n = 0;
    while (1) {
        my $rows = $dbh->selectall_arrayref('FETCH 7 FROM c');
        last unless @$rows;
        $n += @$rows;
    }
    $dbh->do('CLOSE c');
    $dbh->rollback;
    check_eq(40, $n, 'rows fetched');
    $dbh->disconnect;
});

step('dbix-class.make_schema_at', sub {
    require DBIx::Class::Schema::Loader;
    my $dir = tempdir(CLEANUP => 1);
    DBIx::Class::Schema::Loader::make_schema_at(
        'Drivers::Schema',
        { dump_directory => $dir, naming => 'current', quiet => 1, generate_pod => 0 },
        [dbi_source(), db_user(), db_password()],
    );
    my $file = "$dir/Drivers/Schema/Result/Person.pm";
    check(-f $file, "dumped $file");
    my $text = do { local (@ARGV, $/) = ($file); <> };
    check($text =~ /has_many/, 'has_many orders');
    check(-f "$dir/Drivers/Schema/Result/Order.pm", 'dumped Order.pm');
    my $schema = Drivers::Schema->connect(dbi_source(), db_user(), db_password());
    check_eq(12, $schema->resultset('Person')->count, 'count through the schema');
    check_eq('person 2', $schema->resultset('Person')->find(2)->name, 'find');
}, 60);

finish();
