# The fuzzing corpus and every crash reproducer, replayed through the
# libFuzzer harnesses of test/fuzz/ (webhook path, HubSpot answers): none
# may fail.  Skipped when clang (Debian's package) is not installed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;

my $pg_config = $ENV{PG_CONFIG} || 'pg_config';
my $out = `sh test/fuzz/regress.sh $pg_config 2>&1`;
my $rc = $? >> 8;
plan skip_all => 'clang is not installed' if $rc == 77;
is($rc, 0, 'every seed, corpus input and crash reproducer replays cleanly') or diag($out);
like($out, qr/fuzz_webhook: (\d+) inputs replayed/, 'the webhook harness ran');
like($out, qr/fuzz_responses: (\d+) inputs replayed/, 'the responses harness ran');
my ($n) = $out =~ /fuzz_responses: (\d+)/;
cmp_ok($n, '>=', 10, "responses corpus is not empty ($n)");
done_testing();
