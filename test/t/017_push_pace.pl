# Pushing at the quota ceiling against a slow HubSpot (issue 21).
#
# 1. HubSpot counts a request when it arrives: with a starved HubSpot that
#    holds each request a random 0-1.5 s before counting it, requests sent
#    a window apart can land in the same window.  hubsync holds a request's
#    place in its window until it is answered, then from its estimated
#    arrival, so a sustained push gets no 429.
# 2. The real-time lane: while a bulk backlog drains at the ceiling, a
#    single-row update of an already-synced record reaches HubSpot while
#    most of the backlog is still queued.
# Counts only, never timings.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 'test/perl';
use HubSync::Node;

my $limit = 20;
my ($node, $fake) = HubSync::Node::with_fake('push_pace',
	fake_config => { burstLimit => $limit, latencyMs => 100, latencyJitterMs => 0,
		arrivalDelayMs => 1500 },
	conf => { 'hubsync.rate_limit' => $limit, 'hubsync.max_inflight' => 8,
		'hubsync.batch_size' => 25, 'hubsync.poll_interval' => '1h' });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# 1. a sustained push: 2,000 contacts in batches of 25 (80 requests, four
# windows' worth) against the starved HubSpot
my $before = $fake->control('GET', 'counters');
$sql->("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email, firstname)
	SELECT 'p' || g || '\@pace.test', 'P' || g FROM generate_series(1, 2000) g");
ok(HubSync::Node::wait_outbox_empty($node), 'the push drained');
my $after = $fake->control('GET', 'counters');
is($after->{total429} - $before->{total429}, 0, 'no 429 with requests arriving up to 1.5 s late');
cmp_ok($after->{rateLimit}{maxRequestsIn10s}, '<=', $limit,
	"never more than $limit requests in HubSpot's window");
is($sql->("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NOT NULL"), '2000',
	'every contact reached HubSpot');
is($after->{duplicates}{hubsync_id} + $after->{duplicates}{email}, 0, 'no duplicates');
is($sql->("SELECT count(*) FROM hubsync.dead_letters"), '0', 'no dead letters');
# the successes were booked a batch at a time: each has its change feed
# row, its sync state and no outbox row left
is($sql->("SELECT count(*) FROM hubsync.changes WHERE direction = 'out' AND op = 'upsert'
	AND properties ->> 'email' LIKE 'p%\@pace.test'"), '2000', 'one change feed row per contact');
is($sql->("SELECT count(*) FROM hubsync.sync_state s JOIN hubspot.contacts c USING (hubsync_id)
	WHERE c.email LIKE 'p%\@pace.test' AND s.hs_object_id = c.hs_object_id
	  AND s.remote ->> 'firstname' = c.firstname"), '2000', 'one sync state per contact, with what was sent');

# 2. the real-time lane: 3,000 more contacts queue as one bulk transaction
# (batches of 100 at 20 requests per 10 s: 15 s of work); once it drains,
# one single-row update of a synced contact goes ahead of it
$node->append_conf('postgresql.conf', "hubsync.batch_size = 100");
$node->reload;
$fake->configure(arrivalDelayMs => 300);
my $target = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'p1\@pace.test'");
$sql->("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email, firstname)
	SELECT 'b' || g || '\@bulk.test', 'B' || g FROM generate_series(1, 3000) g");
ok($node->poll_query_until('postgres',
	"SELECT count(*) < 2900 FROM hubsync.outbox WHERE op = 'create'"), 'the bulk drain is under way');
$sql->("UPDATE hubspot.contacts SET firstname = 'Urgent' WHERE email = 'p1\@pace.test'");
is($sql->("SELECT priority FROM hubsync.outbox WHERE op = 'update'"), '1',
	'a single-row change is in the real-time lane');
my ($arrived, $pending) = (0, -1);
for (1 .. 1200)
{
	my $rec = $fake->control('GET', "records/contacts/$target");
	if (($rec->{properties}{firstname} // '') eq 'Urgent')
	{
		$pending = $sql->("SELECT count(*) FROM hubsync.outbox WHERE op = 'create'");
		$arrived = 1;
		last;
	}
	usleep(50_000);
}
ok($arrived, 'the single-row update reached HubSpot');
cmp_ok($pending, '>', 1000, "it went ahead of the bulk backlog ($pending bulk changes still queued)");
ok(HubSync::Node::wait_outbox_empty($node), 'the bulk drained');
is($sql->("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NOT NULL"), '5000',
	'every bulk contact reached HubSpot');
$after = $fake->control('GET', 'counters');
is($after->{total429} - $before->{total429}, 0, 'still no 429');
is($after->{duplicates}{hubsync_id} + $after->{duplicates}{email}, 0, 'no duplicates');

$node->stop;
done_testing();
