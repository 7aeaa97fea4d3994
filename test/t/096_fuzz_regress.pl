# Every fuzzing seed, corpus input and crash reproducer of test/fuzz/,
# replayed once (none may fail):
#  - through hubsync._parse_probe(), i.e. the server's own parsers as the
#    receiver and the workers run them (webhook checks and dedupe key, push
#    results and 207s, pages, batch and association reads, OAuth and
#    enrichment answers), on a cluster set up by test/fuzz/probe/setup.sql;
#    an ERROR out of the probe or a lost connection fails the test;
#  - through the libFuzzer harnesses (signatures, parse_util.c), when clang
#    (Debian's package, installed by scripts/common.sh) is there.
# Nothing is installed here.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 'test/perl';
use HubSync::Node;

# --- the server's parsers, through the probe
my $node = HubSync::Node::new_node('fuzz_probe', no_preload => 1);
$node->safe_psql('postgres', slurp_file('test/fuzz/probe/setup.sql'));

my (@files, %per_dir);
for my $dir ('test/fuzz/probe/seeds', 'test/fuzz/probe/corpus', 'test/fuzz/crashes/probe')
{
	next unless -d $dir;
	opendir(my $dh, $dir) or die "cannot open $dir: $!";
	my @f = map { "$dir/$_" } sort grep { !/^\./ } readdir($dh);
	closedir($dh);
	$per_dir{$dir} = scalar @f;
	push @files, @f;
}
cmp_ok($per_dir{'test/fuzz/probe/seeds'} // 0, '>=', 100, 'the probe seeds are there');

my $script = '';
my $n = 0;
for my $f (@files)
{
	open(my $fh, '<:raw', $f) or die "cannot read $f: $!";
	local $/;
	my $raw = <$fh>;
	close($fh);
	my ($kind, $status, $body) = $raw =~ /\A(\w+) (-?\d+)\n(.*)\z/s
	  or die "$f: not \"kind status\\n\" + body";
	my $hex = unpack('H*', $body);
	$script .= "\\echo INPUT $f\nBEGIN;\n"
	  . "SELECT 'ok ' || hubsync._parse_probe('$kind', '\\x$hex'::bytea, $status);\nROLLBACK;\n";
	$n++;
}
my $sqlfile = PostgreSQL::Test::Utils::tempdir() . '/replay.sql';
PostgreSQL::Test::Utils::append_to_file($sqlfile, $script);
my ($stdout, $stderr);
my $rc = IPC::Run::run([ 'psql', '-X', '-qAt', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		'-f', $sqlfile ], '>', \$stdout, '2>', \$stderr);
my $ok = () = $stdout =~ /^ok /mg;
my ($last) = $stdout =~ /.*^INPUT (\S+)/ms;
is($ok, $n, "every probe input replays without an error ($n inputs)")
  or diag("failed at " . ($last // '?') . ":\n$stderr");
ok($rc, 'psql ended normally (no lost connection)');
# the probe stores webhook events it signed itself: owner-only
$node->safe_psql('postgres', 'CREATE ROLE fuzz_other LOGIN');
my ($prc, $pout, $perr) = $node->psql('postgres',
	"SET ROLE fuzz_other; SELECT hubsync._parse_probe('webhook', '\\x5b5d'::bytea, 3)");
like($perr, qr/permission denied for function _parse_probe/, 'another role cannot call the probe');
$node->stop('fast');
ok(!$node->log_contains('terminated by signal'), 'no server process crashed');

# --- the libFuzzer harnesses (backend-free code)
my $pg_config = $ENV{PG_CONFIG} || 'pg_config';
my $out = `sh test/fuzz/regress.sh $pg_config 2>&1`;
my $lrc = $? >> 8;
SKIP:
{
	skip 'clang is not installed (scripts/common.sh installs it)', 3 if $lrc == 77;
	is($lrc, 0, 'every libFuzzer seed, corpus input and crash reproducer replays cleanly') or diag($out);
	like($out, qr/fuzz_webhook: (\d+) inputs replayed/, 'the webhook harness ran');
	like($out, qr/fuzz_responses: (\d+) inputs replayed/, 'the responses harness ran');
}
done_testing();
