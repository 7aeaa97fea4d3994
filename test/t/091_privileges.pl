# Privileges with real roles: the BI and application recipes of
# docs/security.md (Roles),
# run as written.  BI cannot write; the application cannot read secrets or
# raw webhook payloads, cannot change credentials, field owners, the object
# model or the outbox, cannot call private functions and cannot keep its
# writes from being pushed.  Every SECURITY DEFINER function pins
# search_path.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('privileges');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# the recipes, exactly as docs/security.md gives them
my $page = slurp_file('docs/security.md');
my ($recipe) = $page =~ /```sql\n(-- read-only BI.*?)```/s;
ok(defined $recipe && $recipe =~ /CREATE ROLE app_writer/, 'docs/security.md has both recipes');
$sql->($recipe);

# as -- run SQL as a role: (ok, stdout, stderr)
sub as
{
	my ($role, $q) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $q, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ], on_error_stop => 1);
	return ($rc == 0, $out, $err);
}
sub allowed
{
	my ($role, $q, $name) = @_;
	my ($ok, $out, $err) = as($role, $q);
	ok($ok, "$role may: $name") or diag($err);
	return $out;
}
sub refused
{
	my ($role, $q, $name, $re) = @_;
	my ($ok, $out, $err) = as($role, $q);
	ok(!$ok && $err =~ ($re // qr/permission denied|insufficient_privilege/), "$role may not: $name")
	  or diag("rc ok=$ok err=$err");
}

# --- BI: reads, never writes
my $hs = $sql->("INSERT INTO hubspot.contacts (email) VALUES ('seed\@example.com') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'seed contact pushed');
is(allowed('bi_reader', 'SELECT count(*) FROM hubspot.contacts', 'read the mirror'), '1', 'BI sees the row');
allowed('bi_reader', 'SELECT count(*) FROM hubspot.deals', 'read another mirror table');
allowed('bi_reader', 'SELECT * FROM hubsync.status', 'read hubsync.status');
allowed('bi_reader', 'SELECT * FROM hubsync.record_status', 'read hubsync.record_status');
allowed('bi_reader', 'SELECT * FROM hubsync.credentials_status', 'read hubsync.credentials_status');
allowed('bi_reader', 'SELECT * FROM hubsync.webhook_stats', 'read hubsync.webhook_stats');
refused('bi_reader', "INSERT INTO hubspot.contacts (email) VALUES ('bi\@example.com')", 'INSERT');
refused('bi_reader', "UPDATE hubspot.contacts SET firstname = 'x'", 'UPDATE');
refused('bi_reader', 'DELETE FROM hubspot.contacts', 'DELETE');
refused('bi_reader', "SELECT hubsync.upsert('contacts', 'email', 'bi\@example.com', '{}')", 'upsert');
refused('bi_reader', 'SELECT * FROM hubsync._credentials', 'read credentials');
refused('bi_reader', 'SELECT * FROM hubsync.inbox', 'read the inbox');

# --- application: writes the mirror, upserts, waits
my $id = allowed('app_writer',
	"INSERT INTO hubspot.contacts (email) VALUES ('app\@example.com') RETURNING hubsync_id", 'INSERT');
is(allowed('app_writer', "SELECT hubsync.await_synced('contacts', '$id', '60s')", 'await_synced'),
	'synced', 'the app\'s write reached HubSpot');
allowed('app_writer', "SELECT hubsync.upsert('contacts', 'email', 'app2\@example.com', '{\"firstname\":\"U\"}')",
	'upsert');
allowed('app_writer', "UPDATE hubspot.contacts SET firstname = 'A' WHERE hubsync_id = '$id'", 'UPDATE');
allowed('app_writer', 'SELECT * FROM hubsync.status', 'read hubsync.status');
# the BI model: the application reads it, hubsync alone writes it
allowed('app_writer', 'SELECT count(*) FROM hubspot.deal_stage_history', 'read the stage history');
refused('app_writer', "INSERT INTO hubspot.deal_stage_history (deal_hubsync_id, stage, entered_at, source)
	VALUES ('$id', 'closedwon', now(), 'local')", 'forge the stage history');
refused('app_writer', "UPDATE hubspot.subscription_history SET recurring_revenue = 0", 'rewrite the subscription history');
refused('app_writer', "DELETE FROM hubspot.pipeline_stages", 'change the stage metadata');
refused('app_writer', "UPDATE hubspot.owners SET archived = true", 'change the owners');
my ($ok, $cs) = as('app_writer', 'SELECT row_to_json(c) FROM hubsync.credentials_status c');
unlike($cs, qr/test-token|hubsync-test-secret/, 'credentials_status shows the app no value');

# secrets and raw payloads
refused('app_writer', 'SELECT * FROM hubsync._credentials', 'read credentials');
refused('app_writer', 'SELECT event FROM hubsync.inbox', 'read raw webhook payloads');
refused('app_writer', 'SELECT * FROM hubsync.inbox', 'read the inbox');
refused('app_writer', "SELECT hubsync._webhook_signature(3, 's', 'POST', 'u', 'b', '1')", 'sign webhooks');

# credentials, field owners, object model, outbox
refused('app_writer', "SELECT hubsync.set_credentials(access_token => 'stolen')", 'set credentials',
	qr/permission denied to set hubsync credentials/);
refused('app_writer', "SELECT hubsync.set_owner('contacts', 'firstname', 'postgres')", 'set field owners',
	qr/permission denied to change field owners/);
refused('app_writer', "INSERT INTO hubsync.field_owners VALUES ('contacts', 'firstname', 'postgres')",
	'write field_owners');
refused('app_writer', "UPDATE hubsync.field_owners SET owner = 'postgres'", 'update field_owners');
refused('app_writer', "UPDATE hubsync.object_types SET paused = true", 'change object types');
refused('app_writer', "INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping) "
	. "VALUES ('evil', 'http://127.0.0.1:9/', '{}')", 'add an enrichment provider');
refused('app_writer', "INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider) "
	. "VALUES ('evil', 'contacts', 'true', 'realtime', 'x')", 'create enrichment rules');
refused('app_writer', "SELECT hubsync.set_enrichment_key('x', 'k')", 'set an enrichment API key');
refused('app_writer', 'SELECT * FROM hubsync._enrichment_keys', 'read enrichment API keys');
refused('app_writer', "UPDATE hubsync.property_map SET property = 'x'", 'change the property map');
refused('app_writer', 'DELETE FROM hubsync.outbox', 'delete queued changes');
refused('app_writer', 'UPDATE hubsync.sync_state SET hs_object_id = 1', 'rewrite sync state');
refused('app_writer', 'SELECT hubsync.pause()', 'pause sync', qr/permission denied to pause hubsync/);
refused('app_writer', 'SELECT hubsync.retry_dead_letters()', 'retry dead letters');

# private functions: the workers' entry points
refused('app_writer', "SELECT hubsync.ingest_webhook('POST', '/x', '[]', 'sig', '0')", 'ingest webhooks');
refused('app_writer', "SELECT hubsync._apply_record('contacts', '{}')", 'apply HubSpot records');
refused('app_writer',
	"SELECT hubsync._push_done('$id', 'contacts', 'update', 1, '{}', '{}')", 'mark pushes done');
refused('app_writer', 'SELECT hubsync._claim(10, 60)', 'claim the outbox');

# it cannot keep its writes from being pushed
refused('app_writer', "SET hubsync.origin = 'hubspot'", 'tag its writes as HubSpot\'s',
	qr/origin tag "hubspot" is reserved/);
refused('app_writer', "SET session_replication_role = replica", 'disable triggers by replication role');
refused('app_writer', 'ALTER TABLE hubspot.contacts DISABLE TRIGGER ALL', 'disable the capture trigger',
	qr/must be owner/);
my $sneaky = allowed('app_writer',
	"SET application_name = 'pg_restore'; INSERT INTO hubspot.contacts (email) VALUES ('sneaky\@example.com') RETURNING hubsync_id",
	'INSERT while claiming to be pg_restore');
is(allowed('app_writer', "SELECT hubsync.await_synced('contacts', '$sneaky', '60s')", 'await it'),
	'synced', 'a write claiming to be pg_restore is still pushed');
ok($fake->control('GET', 'records/contacts/'
	  . $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$sneaky'"))
	  ->{properties}{email} eq 'sneaky@example.com', 'and is in HubSpot');

# ... while a real restore (the table owner) still skips capture
my $restored = $sql->("SET application_name = 'pg_restore';
	INSERT INTO hubspot.contacts (email, hs_object_id) VALUES ('restored\@example.com', NULL) RETURNING hubsync_id");
is($sql->("SELECT count(*) FROM hubsync.outbox WHERE hubsync_id = '$restored'"), '0',
	'the owner restoring a dump is not captured');
$sql->("SET application_name = 'pg_restore'; DELETE FROM hubspot.contacts WHERE hubsync_id = '$restored'");

# --- every SECURITY DEFINER function of the extension pins search_path
my $definers = $sql->("SELECT count(*) FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'hubsync'
	WHERE p.prosecdef");
cmp_ok($definers, '>=', 3, "the extension has SECURITY DEFINER functions ($definers)");
is($sql->("SELECT coalesce(string_agg(p.oid::regprocedure::text, ', '), '') FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'hubsync'
	WHERE p.prosecdef AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
		WHERE c LIKE 'search\\_path=pg\\_catalog%')"), '',
	'every SECURITY DEFINER function sets search_path = pg_catalog, ...');
# and no function of the extension is executable by PUBLIC while private
# and SECURITY DEFINER at once
is($sql->("SELECT coalesce(string_agg(p.oid::regprocedure::text, ', '), '') FROM pg_proc p
	WHERE p.pronamespace = 'hubsync'::regnamespace AND p.prosecdef AND p.proname LIKE '\\_%'
	  AND p.proname <> '_credentials_status'
	  AND has_function_privilege('app_writer', p.oid, 'EXECUTE')"), '',
	'no private SECURITY DEFINER function is open to other roles');

done_testing();
