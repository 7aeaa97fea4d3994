# The association sweep follows HubSpot's per-input paging: a v4 batch
# read answers at most a page of associations per input (500 here, the
# fake's assocBatchReadPageSize) with paging.next.after.  One company with
# 1,762 deals: every link is found, none is taken as removed because it
# sat on a page not read, the sweep does not flip-flop, and a link removed
# in HubSpot on the last page is removed here.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;
use JSON::PP;

my $N = 1762;
my ($node, $fake) = HubSync::Node::with_fake('assocpage',
	fake_config => { searchPerSecond => 50, searchIndexLagMs => 0, burstLimit => 1000 },
	conf => {
		'hubsync.poll_interval' => '1s',
		'hubsync.poll_archived_interval' => '1h',
		'hubsync.poll_association_interval' => '2s',
		'hubsync.search_rate' => 50,
		'hubsync.rate_limit' => 1000 });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# the fixture, made through the fake's control API (no pushes)
my $co = $fake->control('POST', 'seed', { objectType => 'companies', count => 1,
	properties => { name => 'Big Co' } })->{firstId};
my $deals = $fake->control('POST', 'seed', { objectType => 'deals', count => $N,
	properties => { dealname => 'Deal {n}' } });
my @ids = @{ $deals->{ids} };
is(scalar(@ids), $N, "$N deals made in HubSpot");
is($fake->control('POST', 'ui/associations', { fromObjectType => 'companies', fromObjectId => $co,
	toObjectType => 'deals', toObjectIds => \@ids })->{count}, $N, 'all linked to one company');

ok($node->poll_query_until('postgres',
	"SELECT (SELECT count(*) FROM hubspot.deals) = $N AND (SELECT count(*) FROM hubspot.companies) = 1"),
	'the poller mirrored the company and the deals');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = $N FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_type = 'deals'"),
	"the sweep found all $N deals of the company, past the first page");

# the sweep reads the company's deals page by page
my $seq = $fake->control('GET', 'requests')->{lastSeq};
my $t0 = q1('SELECT now()');
ok($node->poll_query_until('postgres',
	"SELECT associations_at > '$t0'::timestamptz + interval '3 s' FROM hubsync.poll_state WHERE object_type = 'companies'"),
	'further sweeps of the companies ran');
my @reads = grep { $_->{path} =~ m{/companies/deals/batch/read$} }
	@{ $fake->control('GET', "requests?since=$seq")->{requests} };
cmp_ok(scalar(@reads), '>=', 4, 'each sweep read the further pages (at least 4 requests for 1,762 links)');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE (event ->> 'associationRemoved')::boolean"), 0,
	'no removal queued for links on pages past the first');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_type = 'deals'"), $N,
	'every link still here after repeated sweeps (no flip-flop)');

# a link on the last page removed in HubSpot is removed here, the rest stay
my $last = $ids[-1];
$fake->control('POST', 'ui/associations', { fromObjectType => 'companies', fromObjectId => $co,
	toObjectType => 'deals', toObjectId => $last, remove => JSON::PP::true });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_id = $last"),
	'a link removed in HubSpot on the last page is removed here');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_type = 'deals'"), $N - 1,
	'the other links stay');

# a further page that fails: those links are unknown, not gone
$fake->control('POST', 'faults', { queue => [ { status => 500, match => '/companies/deals/batch/read',
	skip => 1, count => 50 } ] });
my $t1 = q1('SELECT now()');
ok($node->poll_query_until('postgres',
	"SELECT associations_at > '$t1' FROM hubsync.poll_state WHERE object_type = 'companies'"),
	'a sweep ran while further pages failed');
$fake->control('DELETE', 'faults');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_type = 'deals'"), $N - 1,
	'no link removed for pages that could not be read');

$node->stop;
$fake->stop;
done_testing();
