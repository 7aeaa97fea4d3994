# The fake HubSpot's own fidelity suite, and HubSpot's Node client against
# it.  The Node check is skipped, visibly, when npm cannot be reached.
use strict;
use warnings;
use Test::More;

my $python = $ENV{PYTHON} || 'python3';

my $out = `$python test/fake/test_fake_hubspot.py 2>&1`;
my $status = $? >> 8;
is($status, 0, 'fake HubSpot fidelity suite passes') or diag $out;
like($out, qr/^OK/m, 'unittest reports OK');
my ($ran) = $out =~ /^Ran (\d+) tests?/m;
cmp_ok($ran // 0, '>', 50, 'the fidelity suite ran its tests');

SKIP:
{
	my $node_out = `sh test/fake/node_client_check.sh 2>&1`;
	my $rc = $? >> 8;
	if ($rc == 77)
	{
		my ($why) = $node_out =~ /(SKIP:[^\n]*)/;
		diag($why // 'SKIP: Node client check unavailable');
		skip($why // 'Node client check unavailable', 1);
	}
	is($rc, 0, "HubSpot's Node client works unchanged against the fake") or diag $node_out;
}

done_testing();
