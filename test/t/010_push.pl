# Push: application writes reach the fake HubSpot once, with only what
# changed; hs_object_id comes back; contacts with a known email are linked.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('push');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# create: INSERT reaches HubSpot through batch upsert, id written back
my $ann = $sql->("INSERT INTO hubspot.contacts (email, firstname, properties)
	VALUES ('ann\@example.com', 'Ann', '{\"favourite_colour\": \"\"}') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'insert left the outbox');
my $hs_id = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$ann'");
like($hs_id, qr/^\d+$/, 'hs_object_id written back to the mirror row');
my $rec = $fake->control('GET', "records/contacts/$hs_id");
is($rec->{properties}{email}, 'ann@example.com', 'email in HubSpot');
is($rec->{properties}{firstname}, 'Ann', 'firstname in HubSpot');
is($rec->{properties}{hubsync_id}, $ann, 'hubsync_id property set in HubSpot');
my $log = $fake->control('GET', 'requests');
is(scalar(grep { $_->{path} eq '/crm/v3/objects/contacts/batch/upsert' } @{ $log->{requests} }), 1,
	'one batch upsert');
ok((grep { $_->{path} eq '/crm/v3/properties/contacts' && $_->{method} eq 'POST' } @{ $log->{requests} }),
	'the hubsync_id property was created');
is($sql->("SELECT status FROM hubsync.record_status WHERE hubsync_id = '$ann'"), 'synced', 'record_status synced');

# update: only the changed property, through batch update by id
my $seq = $log->{lastSeq};
$sql->("UPDATE hubspot.contacts SET jobtitle = 'CTO' WHERE hubsync_id = '$ann'");
ok(HubSync::Node::wait_outbox_empty($node), 'update left the outbox');
$log = $fake->control('GET', "requests?since=$seq");
my @updates = grep { $_->{path} eq '/crm/v3/objects/contacts/batch/update' } @{ $log->{requests} };
is(scalar @updates, 1, 'one batch update');
is($fake->control('GET', "records/contacts/$hs_id")->{properties}{jobtitle}, 'CTO', 'jobtitle in HubSpot');
is($sql->("SELECT properties::text FROM hubsync.changes WHERE hubsync_id = '$ann' ORDER BY id DESC LIMIT 1"),
	'{"jobtitle": "CTO"}', 'only the changed property was sent');

# an UPDATE to the same value sends nothing; compare-before-write drops a
# change back to the value HubSpot already has
$seq = $fake->control('GET', 'requests')->{lastSeq};
$sql->("UPDATE hubspot.contacts SET jobtitle = 'CTO' WHERE hubsync_id = '$ann'");
$sql->("BEGIN; UPDATE hubspot.contacts SET jobtitle = 'CEO' WHERE hubsync_id = '$ann';
	UPDATE hubspot.contacts SET jobtitle = 'CTO' WHERE hubsync_id = '$ann'; COMMIT;");
ok(HubSync::Node::wait_outbox_empty($node), 'no-op changes drained');
sleep 1;
is(scalar @{ $fake->control('GET', "requests?since=$seq")->{requests} }, 0, 'no request for values HubSpot has');

# coalescing: create and several updates in one transaction become one push
$seq = $fake->control('GET', 'requests')->{lastSeq};
my $deal = $sql->("BEGIN;
	INSERT INTO hubspot.deals (hubsync_id, dealname, amount, dealstage, pipeline, closedate)
	  VALUES ('00000000-0000-0000-0000-00000000d001', 'Acme', 100, 'appointmentscheduled', 'default', '2025-06-30 12:00Z');
	UPDATE hubspot.deals SET amount = 1234.50 WHERE dealname = 'Acme';
	UPDATE hubspot.deals SET dealstage = 'closedwon' WHERE dealname = 'Acme';
	COMMIT; SELECT '00000000-0000-0000-0000-00000000d001'");
ok(HubSync::Node::wait_outbox_empty($node), 'deal pushed');
my @deal_reqs = grep { $_->{path} =~ m{/objects/deals/batch} } @{ $fake->control('GET', "requests?since=$seq")->{requests} };
is(scalar @deal_reqs, 1, 'create + 2 updates coalesced into one request');
my $deal_id = $sql->("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$deal'");
my $dp = $fake->control('GET', "records/deals/$deal_id")->{properties};
is($dp->{amount}, '1234.50', 'numeric sent as its decimal text');
is($dp->{dealstage}, 'closedwon', 'latest value sent');
is($dp->{closedate}, '2025-06-30T12:00:00.000Z', 'timestamptz sent as ISO 8601 UTC with ms');

# delete archives
$sql->("DELETE FROM hubspot.deals WHERE hubsync_id = '$deal'");
ok(HubSync::Node::wait_outbox_empty($node), 'delete left the outbox');
ok($fake->control('GET', "records/deals/$deal_id")->{archived}, 'deal archived in HubSpot');

# a contact whose email HubSpot already has is linked, not duplicated
my $seeded = $fake->control('POST', 'seed', { objectType => 'contacts', count => 1,
	properties => { email => 'existing@example.com', firstname => 'Old' } });
my $existing_id = $seeded->{ids}[0];
my $bob = $sql->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('existing\@example.com', 'Bob') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'duplicate-email contact drained');
is($sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$bob'"), $existing_id,
	'linked to the existing HubSpot contact');
is($fake->control('GET', "records/contacts/$existing_id")->{properties}{firstname}, 'Bob', 'existing contact updated');
is($fake->control('GET', "records/contacts/$existing_id")->{properties}{hubsync_id}, $bob, 'and claimed by hubsync_id');
is($sql->('SELECT count(*) FROM hubsync.dead_letters'), '0', 'no dead letter');
is($fake->control('GET', 'counters')->{duplicates}{email}, 0, 'no duplicate email in HubSpot');

# concurrent writers on the same rows all converge
$sql->("INSERT INTO hubspot.companies (name) SELECT 'co' || g FROM generate_series(1, 50) g");
my @bg = map {
	my $i = $_;
	$node->background_psql('postgres')
} 1 .. 3;
for my $i (0 .. 2)
{
	$bg[$i]->query_safe("UPDATE hubspot.companies SET city = 'city$i', industry = 'ind$i'");
}
$_->quit for @bg;
$sql->("UPDATE hubspot.companies SET country = 'NO'");
ok(HubSync::Node::wait_outbox_empty($node), 'concurrent updates drained');
my $companies = $fake->control('GET', 'records/companies');
my %local = map { split /\|/ } split /\n/, $sql->("SELECT hs_object_id, city || '/' || industry || '/' || country FROM hubspot.companies");
my $mismatch = 0;
for my $r (@{ $companies->{results} })
{
	my $p = $r->{properties};
	$mismatch++ unless ($local{ $r->{id} } // '') eq "$p->{city}/$p->{industry}/$p->{country}";
}
is(scalar @{ $companies->{results} }, 50, '50 companies in HubSpot');
is($mismatch, 0, 'every company matches its row');
is($fake->control('GET', 'counters')->{duplicates}{hubsync_id}, 0, 'no duplicate by hubsync_id');

$node->stop;
$fake->stop;
done_testing();
