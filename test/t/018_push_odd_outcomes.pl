# The outcomes a batch's set-based booking (hubsync._push_done_batch)
# hands to the per-record path.
#
# 1. A rep's edit applied while our push of the same property is in flight,
# its transaction still open when the push's answer comes back: HubSpot
# ends with our value (our write landed after the rep's), and so must the
# mirror.  The push's bookkeeping waits for the inbound change to commit
# and gives the mirror back the value HubSpot holds; the echo of our push
# cannot do it (it carries the version the push recorded, so it is stale).
# A user BEFORE trigger that sleeps holds the inbound transaction open;
# the fake's latency holds the push in flight.
#
# 2. An update HubSpot answers for another record of ours: a rep merged
# the record into that one (and no webhook told us yet).  The merged-away
# row goes, its lineage is kept, the survivor stays; the other records of
# the batch are booked as usual.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_webhooks('adoptrace');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# settled -- the fake delivered everything and the inbox is applied
sub settled { return HubSync::Node::webhooks_applied($node, $fake); }

# two contacts: the push's bookkeeping books a batch of several records
# set-based (hubsync._push_done_batch), where the race was
my ($hid, $other) = split /\n/, q1("INSERT INTO hubspot.contacts (email, firstname)
	VALUES ('race\@example.com', 'First'), ('other\@example.com', 'Other') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node) && settled(), 'contacts created in HubSpot');
my $id = q1("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$hid'");

# the application's trigger: slow on the rep's value, so the inbound
# transaction is still open when the push's answer arrives
q1(q{CREATE FUNCTION slow_on_rep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.firstname = 'Rep' THEN
		PERFORM pg_sleep(5);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow_on_rep BEFORE UPDATE ON hubspot.contacts
	FOR EACH ROW EXECUTE FUNCTION slow_on_rep()});
# a record last synced long ago, as most are (a record synced in the last
# minutes always takes the slow path of the bookkeeping)
q1("UPDATE hubsync.sync_state SET synced_at = now() - interval '1 hour' ");

# our push: 2 s to reach HubSpot, 2 s for the answer to come back
$fake->configure(latencyMs => 4000);
q1("UPDATE hubspot.contacts SET firstname = 'App'");
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubsync.outbox WHERE hubsync_id = '$hid' AND state = 'in_flight'"),
	'our push is in flight');
# the rep's edit lands in HubSpot before ours does
sleep 0.3;
$fake->control('POST', "ui/contacts/$id", { properties => { firstname => 'Rep' } });
ok(HubSync::Node::wait_outbox_empty($node) && settled(), 'push answered and the rep\'s event applied');
$fake->configure(latencyMs => 0);
ok(settled(), 'the echo of our push arrived');

is($fake->control('GET', "records/contacts/$id")->{properties}{firstname}, 'App',
	'HubSpot holds our value: our write landed after the rep\'s');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'in' AND hubsync_id = '$hid' AND properties ->> 'firstname' = 'Rep'"),
	'1', 'the rep\'s edit was applied to the mirror while our push was in flight');
is(q1("SELECT firstname FROM hubspot.contacts WHERE hubsync_id = '$hid'"), 'App',
	'the mirror holds our value again, as HubSpot does');
is(q1("SELECT firstname FROM hubspot.contacts WHERE hubsync_id = '$other'"), 'App',
	'the other record of the batch keeps our value');
is(q1("SELECT count(*) FROM hubsync.outbox"), '0', 'nothing left to push');

# ---- 2. an update answered for the record ours was merged into ----
q1("DROP TRIGGER slow_on_rep ON hubspot.contacts");
# (the merge keeps the primary's id, so the answer names a record we have)
$fake->configure(webhookUrl => undef, mergeCreatesNewId => JSON::PP::false);
my ($a_hid, $b_hid, $c_hid) = split /\n/, q1("INSERT INTO hubspot.contacts (email, firstname)
	VALUES ('a\@example.com', 'A'), ('b\@example.com', 'B'), ('c\@example.com', 'C') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'three more contacts created in HubSpot');
my ($a_id, $b_id) = map { q1("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$_'") } ($a_hid, $b_hid);
$fake->control('POST', 'ui/contacts/merge', { primaryObjectId => $a_id, objectIdToMerge => $b_id });
q1("UPDATE hubspot.contacts SET lastname = 'Batch' WHERE hubsync_id IN ('$b_hid', '$c_hid')");
ok(HubSync::Node::wait_outbox_empty($node), 'the batch of two updates was answered');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hubsync_id = '$b_hid'"), '0',
	'the merged-away row is gone');
is(q1("SELECT survivor_id FROM hubsync.merges WHERE merged_id = $b_id"), $a_id, 'its lineage is kept');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hubsync_id = '$a_hid' AND hs_object_id = $a_id"), '1',
	'the survivor keeps its row');
is(q1("SELECT lastname FROM hubspot.contacts WHERE hubsync_id = '$c_hid'"), 'Batch',
	'the other record of the batch is booked as usual');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'out' AND hubsync_id = '$c_hid' AND properties ? 'lastname'"),
	'1', '... with its change feed row');
is(q1("SELECT count(*) FROM hubsync.dead_letters"), '0', 'nothing dead-lettered');

$node->stop;
$fake->stop;
done_testing();
