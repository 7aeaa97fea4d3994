# 409 conflicts on unique values: a new local record whose unique value a
# HubSpot record already holds is linked to that record -- whatever the
# conflict message looks like (with "Existing ID: N", naming only the
# property, or naming neither) and for any unique property, not only
# contacts' email.  Never a duplicate, never a dead letter.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use JSON::PP;

my ($node, $fake) = HubSync::Node::with_fake('pushconflict',
	fake_config => { searchIndexLagMs => 0 });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $auth = { Authorization => 'Bearer test-token' };

# a unique property on companies, as a HubSpot admin would make it
my ($st) = $fake->request('POST', '/crm/v3/properties/companies', { name => 'erp_key', label => 'ERP key',
	type => 'string', fieldType => 'text', groupName => 'companyinformation',
	hasUniqueValue => JSON::PP::true }, $auth);
ok($st == 201 || $st == 200, 'unique property erp_key made in HubSpot');

# warm up: hubsync_id exists on both types before the conflicts
$sql->("INSERT INTO hubspot.companies (name) VALUES ('Warm')");
$sql->("INSERT INTO hubspot.contacts (email) VALUES ('warm\@example.com')");
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up pushed');

my $n = 0;
for my $shape (qw(existingId noId bare))
{
	$fake->configure(uniqueConflictMessage => $shape);

	# a company whose erp_key HubSpot already has
	$n++;
	my $there = $fake->control('POST', 'seed', { objectType => 'companies', count => 1,
		properties => { name => "There $n", erp_key => "K$n" } })->{firstId};
	my $co = $sql->("INSERT INTO hubspot.companies (name, properties) VALUES ('Here $n', '{\"erp_key\": \"K$n\"}') RETURNING hubsync_id");
	ok(HubSync::Node::wait_outbox_empty($node), "$shape: company change left the outbox");
	is($sql->("SELECT hs_object_id FROM hubspot.companies WHERE hubsync_id = '$co'"), $there,
		"$shape: company linked to the HubSpot record holding its unique erp_key");
	is(scalar(grep { ($_->{properties}{erp_key} // '') eq "K$n" }
			@{ $fake->control('GET', 'records/companies?archived=false&limit=1000')->{results} }), 1,
		"$shape: no duplicate company in HubSpot");
	is($fake->control('GET', "records/companies/$there")->{properties}{hubsync_id}, $co,
		"$shape: and the HubSpot record is claimed by hubsync_id");

	# a contact whose email HubSpot already has
	my $cid = $fake->control('POST', 'seed', { objectType => 'contacts', count => 1,
		properties => { email => "dup$n\@example.com", firstname => 'Old' } })->{firstId};
	my $ct = $sql->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('dup$n\@example.com', 'New') RETURNING hubsync_id");
	ok(HubSync::Node::wait_outbox_empty($node), "$shape: contact change left the outbox");
	is($sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$ct'"), $cid,
		"$shape: contact linked to the HubSpot contact with its email");
	is($fake->control('GET', "records/contacts/$cid")->{properties}{firstname}, 'New',
		"$shape: and updated");
	is($sql->('SELECT count(*) FROM hubsync.dead_letters'), '0', "$shape: nothing dead-lettered");
}
is($fake->control('GET', 'counters')->{duplicates}{email}, 0, 'no duplicate email in HubSpot');

$node->stop;
$fake->stop;
done_testing();
