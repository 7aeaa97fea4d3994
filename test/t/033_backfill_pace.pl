# Backfill pacing: with the 10-second window as the limit (30 requests here)
# and 200 ms latency, a backfill takes the whole idle window and never more:
# each list request reaches HubSpot when the quota granted it, not after the
# pages in hand are applied (that had put 193-196 requests in a 190 window),
# so there is no 429; and the streams waste few pages on their boundaries.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $limit = 30;
my $records = 5000;
my ($node, $fake) = HubSync::Node::with_fake('backfill_pace',
	fake_config => { burstLimit => $limit, latencyMs => 200, latencyJitterMs => 0 },
	conf => { 'hubsync.rate_limit' => $limit, 'hubsync.max_inflight' => 8,
		'hubsync.poll_interval' => '1h' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

$fake->control('POST', 'seed', { objectType => 'contacts', count => $records,
	properties => { email => 'p{n}@pace.test', firstname => 'F{n}', lastname => 'L{n}' } });
my $before = $fake->control('GET', 'counters');

is(q1("SELECT string_agg(b, ',') FROM hubsync.backfill('contacts') b"), 'contacts', 'backfill started');
ok($node->poll_query_until('postgres', "SELECT state = 'done' FROM hubsync.backfills WHERE object_type = 'contacts'"),
	'backfill finished');
is(q1("SELECT count(*) FROM hubspot.contacts"), $records, 'every record imported');

my $after = $fake->control('GET', 'counters');
is($after->{total429} - $before->{total429}, 0, 'no 429 from HubSpot');
is($after->{rateLimit}{maxRequestsIn10s}, $limit,
	"the whole idle window used, never more: $limit requests in HubSpot's 10 s window at most");
my $requests = q1("SELECT requests FROM hubsync.backfills WHERE object_type = 'contacts'");
cmp_ok($requests, '<=', $records / 100 + 8, "few pages read twice on stream boundaries ($requests list requests)");
is(q1("SELECT total_estimate FROM hubsync.backfills WHERE object_type = 'contacts'"), $records,
	'estimated total from the planning search');

$node->stop;
done_testing();
