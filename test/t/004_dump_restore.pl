# pg_dump / pg_restore keep the mirror and hubsync's own tables -- the
# outbox as it was, settings tables (field owners, enrichment providers),
# sync state, dead letters, inbox, change feed, conflicts, merges and
# associations -- and a restore re-enqueues nothing.  Secrets (HubSpot
# credentials, enrichment API keys) are never in a dump: after a restore
# credentials_status and enrichment_status say they are missing.
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
	SELECT hubsync.set_owner('contacts', 'email', 'hubspot');
	SELECT hubsync.pause('deals');
	SELECT hubsync.set_credentials(access_token => 'dump-token', client_secret => 'dump-secret',
	                               oauth_client_id => 'dump-oauth-id', oauth_client_secret => 'dump-oauth-secret',
	                               oauth_refresh_token => 'dump-refresh');
	INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping)
	VALUES ('dumpco', 'http://127.0.0.1:9/enrich', '{"jobtitle": "$.title"}');
	SELECT hubsync.set_enrichment_key('dumpco', 'dump-enrich-key');
	INSERT INTO hubsync.sync_state (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
	SELECT hubsync_id, 'contacts', 101, '{"email": "synced@example.com"}', '{"email": 1700000000000}', now()
	FROM hubspot.contacts WHERE hs_object_id = 101;
	INSERT INTO hubsync.dead_letters (object_type, hubsync_id, op, properties, origin, attempts, status,
	                                  category, message, created_at)
	VALUES ('contacts', gen_random_uuid(), 'update', '{"phone": "x"}', 'app', 1, 400,
	        'VALIDATION_ERROR', 'Property values were not valid', now());
	INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at, event, state)
	VALUES ('dump-1', 'contact.propertyChange', '0-1', 101, 1700000000000, '{"propertyName": "email"}', 'applied');
	INSERT INTO hubsync.changes (direction, object_type, hs_object_id, op, origin, properties)
	VALUES ('in', 'contacts', 101, 'update', 'hubspot', '{"email": "synced@example.com"}');
	INSERT INTO hubsync.conflicts (object_type, hs_object_id, property, local_value, remote_value, resolution)
	VALUES ('deals', 7, 'amount', '1', '2', 'reverted');
	INSERT INTO hubsync.merges (object_type, merged_id, survivor_id) VALUES ('contacts', 5, 101);
	INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id)
	VALUES ('contacts', 101, 'companies', 202, 1);
});
my $outbox_before = $node->safe_psql('src', 'SELECT count(*) FROM hubsync.outbox');

my $dump = $node->basedir . '/src.dump';
$node->command_ok(['pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump], 'pg_dump');

# no secret in what pg_dump writes (plain format, so it can be searched;
# the custom format above holds the same rows, compressed)
my $plain = $node->basedir . '/src.sql';
$node->command_ok(['pg_dump', '-d', $node->connstr('src'), '-f', $plain], 'pg_dump, plain');
my $text = slurp_file($plain);
like($text, qr/synced\@example\.com/, 'the plain dump holds the rows (the search can find them)');
my @secrets = ('dump-token', 'dump-secret', 'dump-oauth-id', 'dump-oauth-secret', 'dump-refresh', 'dump-enrich-key');
is(join(', ', grep { index($text, $_) >= 0 } @secrets), '', 'no secret in the dump');
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
for my $q (
	[ 'outbox rows', 'SELECT id, object_type, hubsync_id, op, changed, origin, state, attempts FROM hubsync.outbox ORDER BY id' ],
	[ 'mirror rows with their identity', 'SELECT hubsync_id, hs_object_id, email FROM hubspot.contacts ORDER BY email' ],
	[ 'field owners', 'SELECT * FROM hubsync.field_owners ORDER BY 1, 2' ],
	[ 'sync state', 'SELECT * FROM hubsync.sync_state ORDER BY hubsync_id' ],
	[ 'dead letters', 'SELECT * FROM hubsync.dead_letters ORDER BY id' ],
	[ 'inbox', 'SELECT * FROM hubsync.inbox ORDER BY id' ],
	[ 'change feed', 'SELECT * FROM hubsync.changes ORDER BY id' ],
	[ 'conflicts', 'SELECT * FROM hubsync.conflicts ORDER BY id' ],
	[ 'merges', 'SELECT * FROM hubsync.merges ORDER BY 1, 2' ],
	[ 'associations', 'SELECT * FROM hubspot.associations ORDER BY 1, 2, 3, 4' ],
	[ 'enrichment providers', 'SELECT name, endpoint, mapping FROM hubsync.enrichment_providers ORDER BY 1' ])
{
	my ($what, $query) = @$q;
	my $src = $node->safe_psql('src', $query);
	ok(length $src, "$what: there is something to compare");
	is($node->safe_psql('dst', $query), $src, "$what restored");
}
# secrets: set in the source, missing after the restore
is($node->safe_psql('src', 'SELECT access_token, client_secret, oauth_refresh_token, auth FROM hubsync.credentials_status'),
	't|t|t|ok', 'source: credentials set');
is($node->safe_psql('dst', 'SELECT access_token, client_secret, oauth_client_id, oauth_client_secret,
	oauth_refresh_token, auth FROM hubsync.credentials_status'),
	'f|f|f|f|f|missing', 'restored: credentials_status says every secret is missing');
is($node->safe_psql('dst', 'SELECT count(*) FROM hubsync._credentials'), '0', 'restored: no credentials row');
is($node->safe_psql('src', "SELECT api_key FROM hubsync.enrichment_status WHERE provider = 'dumpco'"), 't',
	'source: the enrichment key is set');
is($node->safe_psql('dst', "SELECT api_key FROM hubsync.enrichment_status WHERE provider = 'dumpco'"), 'f',
	'restored: enrichment_status says the provider\'s key is missing');
# set again, as the README says
$node->safe_psql('dst', "SELECT hubsync.set_credentials(access_token => 'new-token', client_secret => 'new-secret');
	SELECT hubsync.set_enrichment_key('dumpco', 'new-key')");
is($node->safe_psql('dst', "SELECT access_token, client_secret, auth FROM hubsync.credentials_status")
   . $node->safe_psql('dst', "SELECT api_key FROM hubsync.enrichment_status WHERE provider = 'dumpco'"),
	't|t|okt', 'set again after the restore');
is($node->safe_psql('dst', "SELECT owner FROM hubsync.field_owners WHERE property = 'amount'"),
	'postgres', 'field owners restored');
is($node->safe_psql('dst', 'SELECT count(*) FROM hubsync.object_types'),
	$node->safe_psql('src', 'SELECT count(*) FROM hubsync.object_types'), 'no duplicated built-in rows');

is($node->safe_psql('dst', "SELECT string_agg(object_type, ',') FROM hubsync.object_types WHERE paused"), 'deals',
	'a paused object type stays paused, and only that one');
$node->safe_psql('dst', "SELECT hubsync.resume()");
is($node->safe_psql('dst', "SELECT count(*) FROM hubsync.object_types WHERE paused")
   . $node->safe_psql('dst', "SELECT count(*) FROM hubsync.paused_types"), '00', 'resume after a restore clears the pause');

# new changes after a restore get fresh outbox ids
$node->safe_psql('dst', "UPDATE hubspot.contacts SET firstname = 'Penny' WHERE email = 'pending\@example.com'");
is($node->safe_psql('dst', 'SELECT count(DISTINCT id) = count(*) FROM hubsync.outbox'), 't', 'outbox ids stay unique');

$node->stop;
done_testing();
