# A search page whose record's last-modified date is no date (one that
# timestamptz_in refuses; found by the probe fuzzer): the poller must not
# raise an error there, which stopped the pull worker at every round.  It
# takes the record's updatedAt instead, ingests the record, goes on, and
# finds a real change afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('poll_bad_time',
	fake_config => { searchIndexLagMs => 0 },
	conf => { 'hubsync.poll_interval' => '1s', 'hubsync.poll_index_lag' => '1s' });
ok(HubSync::Node::wait_for_workers($node), 'workers run');
ok($node->poll_query_until('postgres',
	"SELECT cursor_ms IS NOT NULL FROM hubsync.poll_state WHERE object_type = 'contacts'"),
	'the poller set its contacts cursor');
my $pull = HubSync::Node::worker_pids($node)->{'hubsync pull'};

# the next three contact searches answer with a date that is no date
$fake->control('POST', 'faults', { queue => [ { hostile => 'badtime', match => '/contacts/search', count => 3 } ] });
my $fired = 0;
for (1 .. 60)
{
	$fired = $fake->control('GET', 'faults')->{fired};
	last if $fired >= 3;
	sleep 1;
}
is($fired, 3, 'the poller read the three pages with a bad date');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = 424242 AND email = 'bad-time\@poll.test'"),
	'the record with the bad date is ingested all the same');
ok(!$node->log_contains('invalid input syntax for type timestamp'), 'no error on the bad date');
ok(!$node->log_contains('exited with exit code'), 'no worker exited');
is(HubSync::Node::worker_pids($node)->{'hubsync pull'}, $pull, 'the pull worker did not stop');

# the legitimate path: a change made in HubSpot is still found
$fake->control('POST', 'ui/contacts', { properties => { email => 'after-bad-time@poll.test' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE email = 'after-bad-time\@poll.test'"),
	'a later change is polled and applied');
done_testing();
