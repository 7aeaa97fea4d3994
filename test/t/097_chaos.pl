# Convergence under chaos, short version (issue 11): test/chaos.py runs app
# sessions, reps in the fake, injected faults, kill -9 of workers and one
# server restart for a short while, then compares both sides record by
# record and property by property.  The long run is by hand:
#   test/chaos.py --duration 1800
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{HUBSYNC_CHAOS_SECONDS} || 30;
my $bindir = `pg_config --bindir`;
chomp $bindir;
local $ENV{PG_BIN} = $bindir;
my $out = `python3 test/chaos.py --duration $seconds --seed 7 --explain 3 2>&1`;
my $rc = $? >> 8;
note $out;
is($rc, 0, "both sides agree after $seconds s of chaos") or diag $out;
like($out, qr/^RESULT: converged$/m, 'the summary says converged');
my ($kills) = $out =~ /workers killed \(kill -9\)\s+(\d+)/;
my ($restarts) = $out =~ /server restarts\s+(\d+)/;
my ($rep) = $out =~ /rep edits\s+(\d+)/;
ok(($kills // 0) >= 1 && ($restarts // 0) == 1 && ($rep // 0) > 0,
	'the run had kills, one restart and rep edits');
done_testing();
