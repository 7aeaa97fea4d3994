# Failover: with a streaming replica, no hubsync worker runs on the
# standby; the primary dies while the outbox is draining; after promotion
# the workers start on the new primary and carry on from the replicated
# outbox -- every change reaches HubSpot, none creates a duplicate.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $fake = HubSync::FakeHubSpot->start;
# slow HubSpot down so the drain takes several seconds
$fake->configure(latencyMs => 300);
my $primary = HubSync::Node::new_node('primary', init => { allows_streaming => 1 },
	create_extension => 1, conf => {
		'hubsync.api_base_url' => $fake->url,
		'hubsync.app_id' => 54321,
		'hubsync.rate_limit' => 190,
		'hubsync.batch_size' => 10,
		'hubsync.max_inflight' => 2,
	});
$primary->safe_psql('postgres', "SELECT hubsync.set_credentials(access_token => 'test-token')");
$primary->safe_psql('postgres', "INSERT INTO hubspot.contacts (email) VALUES ('warmup\@example.com')");
ok(HubSync::Node::wait_outbox_empty($primary), 'primary pushes');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# ---- the standby: no worker, nothing sent ----
is($standby->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%'"),
	'0', 'no hubsync worker runs on the standby');
is($standby->safe_psql('postgres', "SELECT string_agg(DISTINCT state, ',') FROM hubsync.worker_status()"),
	'stopped', 'worker_status on the standby: stopped');
is($standby->safe_psql('postgres', "SELECT count(*) FROM hubsync.status"), '10',
	'hubsync.status is readable on the standby');

# ---- a stream of changes; the primary dies mid-drain ----
my $n = 600;
$primary->safe_psql('postgres',
	"INSERT INTO hubspot.contacts (email) SELECT 'f' || g || '\@example.com' FROM generate_series(1, $n) g");
$primary->wait_for_catchup($standby);
ok($primary->poll_query_until('postgres',
	"SELECT (SELECT count(*) FROM hubsync.outbox) BETWEEN 1 AND $n - 50"),
	'the primary has pushed some changes and not all');
my $seq = $fake->control('GET', 'requests')->{lastSeq};
is($standby->safe_psql('postgres', "SELECT count(*) > 0 FROM hubsync.outbox"), 't',
	'the standby holds the outbox');
$primary->stop('immediate');

my $sent_by_primary = $fake->control('GET', 'records/contacts')->{total};
ok($sent_by_primary > 1 && $sent_by_primary < $n + 1, "HubSpot has $sent_by_primary of " . ($n + 1) . ' contacts at the failover');
sleep 1;
is(scalar(@{ $fake->control('GET', "requests?since=$seq")->{requests} }) <= 2, 1,
	'nothing is sent while only the standby is left (at most the requests already in flight)');

# ---- promotion: the workers start and carry on ----
$standby->promote;
ok(HubSync::Node::wait_for_workers($standby), 'the workers start after promotion');
ok(HubSync::Node::wait_for_state($standby, 'hubsync push', 'running'), 'the push worker runs on the new primary');
ok($standby->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox'),
	'the new primary drains the outbox');
is($fake->control('GET', 'records/contacts')->{total}, $n + 1, 'every contact is in HubSpot');
my $counters = $fake->control('GET', 'counters');
is($counters->{duplicates}{hubsync_id} + $counters->{duplicates}{email}, 0, 'no duplicate in HubSpot');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NULL'), '0',
	'every row knows its HubSpot id');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM hubsync.dead_letters'), '0', 'no dead letter');

$standby->stop;
done_testing();
