# What the driver-matrix scripts share: the DSN (as a DBI data source), and
# steps each run in a child process of its own under a timeout (a child
# still running then is killed). Every step prints one line on stdout,
# `ok <name>` or `FAIL <name>: <error>`; before it starts, `... <name>` goes
# to stderr. finish() exits 1 if any step failed.
package Steps;

use strict;
use warnings;
use Exporter 'import';
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(step check check_eq finish dbi_source db_user db_password connect_db);

my $DSN = $ENV{DRIVER_DSN};
unless ($DSN) {
    print "FAIL setup: DRIVER_DSN is not set (postgresql://user\@host:port/db)\n";
    POSIX::_exit(2);
}
my $TIMEOUT = $ENV{DRIVER_STEP_TIMEOUT} || 20;
$| = 1;
my @failed;

my ($user, $password, $host, $port, $dbname) =
    $DSN =~ m{^postgres(?:ql)?://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/?]+)(?::(\d+))?/([^?]*)}
    or do { print "FAIL setup: cannot parse DRIVER_DSN $DSN\n"; POSIX::_exit(2) };

sub dbi_source { "dbi:Pg:dbname=$dbname;host=$host;port=" . ($port || 5432) . ";connect_timeout=10" }
sub db_user { $user || 'postgres' }
sub db_password { defined $password ? $password : '' }

sub connect_db {
    my (%attr) = @_;
    require DBI;
    return DBI->connect(dbi_source(), db_user(), db_password(),
        { RaiseError => 1, PrintError => 0, AutoCommit => 1, %attr });
}

sub check { my ($cond, $what) = @_; die "check failed: $what\n" unless $cond }

sub check_eq {
    my ($want, $got, $what) = @_;
    my $w = defined $want ? $want : 'undef';
    my $g = defined $got ? $got : 'undef';
    die "$what: want <$w>, got <$g>\n" unless $w eq $g;
}

sub step {
    my ($name, $code, $timeout) = @_;
    $timeout ||= $TIMEOUT;
    print STDERR "... $name\n";
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $r;
        my $ok = eval { $code->(); 1 };
        my $err = $@;
        if (!$ok) {
            print STDERR $err;
            (my $line = "$err") =~ s/\r?\n/ | /g;
            $line =~ s/ \| $//;
            print $w substr($line, 0, 2000);
        }
        close $w;
        POSIX::_exit($ok ? 0 : 1);
    }
    close $w;
    my $deadline = time + $timeout;
    my $status;
    while (1) {
        my $done = waitpid($pid, POSIX::WNOHANG());
        if ($done == $pid) { $status = $?; last }
        if (time > $deadline) { kill 'KILL', $pid; waitpid($pid, 0); last }
        sleep 0.02;
    }
    my $err = do { local $/; <$r> };
    close $r;
    $err = '' unless defined $err;
    if (!defined $status) {
        push @failed, $name;
        print "FAIL $name: timed out after ${timeout}s\n";
    } elsif ($status == 0) {
        print "ok $name\n";
    } else {
        push @failed, $name;
        print "FAIL $name: " . ($err ne '' ? $err : "exited with " . ($status >> 8)) . "\n";
    }
}

sub finish { POSIX::_exit(@failed ? 1 : 0) }

1;
