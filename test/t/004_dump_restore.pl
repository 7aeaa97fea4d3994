# pg_dump / pg_restore keep the mirror and hubsync's own tables, and a
# restore re-enqueues nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my $node = HubSync::Node::new_node('dump', conf => { 'hubsync.enabled' => 'off' });
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION hubsync');
$node->safe_psql('src', q{
	INSERT INTO hubspot.contacts (email, firstname, hs_object_id, properties)
	VALUES ('synced@example.com', 'Sy', 101, '{"favourite": "tea"}');
	INSERT INTO hubspot.contacts (email, firstname) VALUES ('pending@example.com', 'Pen');
	INSERT INTO hubspot.deals (dealname, amount, closedate) VALUES ('Big one', 1234.50, '2025-06-30 12:00Z');
	SELECT hubsync.set_owner('deals', 'amount', 'postgres');
});
my $outbox_before = $node->safe_psql('src', 'SELECT count(*) FROM hubsync.outbox');

my $dump = $node->basedir . '/src.dump';
$node->command_ok(['pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
{
	# the test harness sets PGAPPNAME; pg_restore names itself when it is unset
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};
	$node->command_ok(['pg_restore', '-d', $node->connstr('dst'), $dump], 'pg_restore');
}

is($node->safe_psql('dst', 'SELECT email, firstname, hs_object_id, properties FROM hubspot.contacts ORDER BY email'),
	$node->safe_psql('src', 'SELECT email, firstname, hs_object_id, properties FROM hubspot.contacts ORDER BY email'),
	'contacts restored');
is($node->safe_psql('dst', 'SELECT dealname, amount, closedate FROM hubspot.deals'),
	"Big one|1234.50|2025-06-30 12:00:00+00", 'deals restored with their types');
is($node->safe_psql('dst', 'SELECT count(*) FROM hubsync.outbox'), $outbox_before,
	'outbox restored as it was, nothing re-enqueued');
is($node->safe_psql('dst', "SELECT owner FROM hubsync.field_owners WHERE property = 'amount'"),
	'postgres', 'field owners restored');
is($node->safe_psql('dst', 'SELECT count(*) FROM hubsync.object_types'),
	$node->safe_psql('src', 'SELECT count(*) FROM hubsync.object_types'), 'no duplicated built-in rows');

# new changes after a restore get fresh outbox ids
$node->safe_psql('dst', "UPDATE hubspot.contacts SET firstname = 'Penny' WHERE email = 'pending\@example.com'");
is($node->safe_psql('dst', 'SELECT count(DISTINCT id) = count(*) FROM hubsync.outbox'), 't', 'outbox ids stay unique');

$node->stop;
done_testing();
