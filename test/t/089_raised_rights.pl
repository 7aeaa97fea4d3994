# Raised rights, attacked the way a hostile database role would:
#  1. an application role's own operator (app.=) and search_path must not
#     run inside the capture or enrichment trigger, which act as the owner;
#  2. nobody can hang hubsync._capture() on a table of their own (a TEMP
#     "contacts") to make hubsync archive a HubSpot record;
#  3. the workers (superuser) run with a pinned search_path, whatever the
#     database's settings, and a role holding TRIGGER on a mirror table is
#     reported in hubsync.status and alerted;
#  4. application_name = 'pg_restore' keeps neither an association nor an
#     enrichment job from a role that does not own the table.
# Each attack is followed by the legitimate path, which still works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('raised_rights',
	conf => { 'hubsync.poll_interval' => '1s', 'hubsync.enrichment_batch_interval' => '1h' });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# as -- run SQL as a role: (ok, stdout, stderr)
sub as
{
	my ($role, $q) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $q, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ], on_error_stop => 1);
	return ($rc == 0, $out, $err);
}
sub is_superuser
{
	return $sql->("SELECT rolsuper FROM pg_roles WHERE rolname = '$_[0]'") eq 't';
}

# application roles with the grants of docs/security.md (Roles), each with a schema of its own
# holding an = (text, text) that tries to make its owner superuser
for my $role ('app_capture', 'app_enrich', 'app_worker')
{
	$sql->("CREATE ROLE $role LOGIN;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA hubspot TO $role;
		CREATE SCHEMA app_$role AUTHORIZATION $role");
	my ($ok, $out, $err) = as($role, qq{
		CREATE FUNCTION app_$role.eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS \$f\$
		BEGIN
			BEGIN
				EXECUTE 'ALTER ROLE $role SUPERUSER';
			EXCEPTION WHEN OTHERS THEN NULL;
			END;
			RETURN a OPERATOR(pg_catalog.=) b;
		END \$f\$;
		CREATE OPERATOR app_$role.= (LEFTARG = text, RIGHTARG = text, FUNCTION = app_$role.eq)});
	ok($ok, "$role defined its own = operator") or diag($err);
}

# ---- 1. the capture trigger ----
my ($ok, $id, $err) = as('app_capture', "SET search_path = app_app_capture, pg_catalog;
	INSERT INTO hubspot.contacts (email) VALUES ('hijack\@example.com') RETURNING hubsync_id");
ok($ok, 'the application can still insert with its own search_path') or diag($err);
ok(!is_superuser('app_capture'), 'the capture trigger did not run the role\'s operator as owner');
($ok, my $st, $err) = as('app_capture', "SELECT hubsync.await_synced('contacts', '$id', '60s')");
is($st, 'synced', 'and the row reached HubSpot');

# ---- 1. the enrichment trigger evaluates rule conditions ----
$sql->("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping)
		VALUES ('p', 'http://127.0.0.1:1/enrich', '{\"jobtitle\": \"\$.title\"}');
	INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider)
		VALUES ('leads', 'contacts', 'lifecyclestage = ''lead''', 'batch', 'p')");
($ok, $id, $err) = as('app_enrich', "SET search_path = app_app_enrich, pg_catalog;
	INSERT INTO hubspot.contacts (email, lifecyclestage) VALUES ('lead\@example.com', 'lead')
	RETURNING hubsync_id");
ok($ok, 'a row matching a rule can be inserted with the role\'s search_path') or diag($err);
ok(!is_superuser('app_enrich'), 'the rule condition did not run the role\'s operator as owner');
is($sql->("SELECT count(*) FROM hubsync.enrichment_jobs WHERE hubsync_id = '$id'"), '1',
	'and the rule still queued its job');

# ---- 2. _capture on a table of one's own ----
my $victim = $fake->control('POST', 'ui/contacts', { properties => { email => 'victim@example.com' } })->{id};
$sql->("CREATE ROLE stranger LOGIN");
($ok, my $out, $err) = as('stranger', "CREATE TEMP TABLE contacts (hubsync_id uuid DEFAULT gen_random_uuid(),
		hs_object_id bigint, properties jsonb);
	CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON contacts
		FOR EACH ROW EXECUTE FUNCTION hubsync._capture();
	INSERT INTO contacts (hs_object_id) VALUES ($victim);
	DELETE FROM contacts");
ok(!$ok && $err =~ /permission denied for function (hubsync\.)?_capture/, 'a stranger cannot attach hubsync._capture()')
  or diag($err);
# even the owner's look-alike table is refused: the relation counts, not its name
($ok, $out, $err) = $node->psql('postgres', "CREATE TEMP TABLE contacts (hubsync_id uuid DEFAULT gen_random_uuid(),
		hs_object_id bigint, properties jsonb);
	CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON contacts
		FOR EACH ROW EXECUTE FUNCTION hubsync._capture();
	INSERT INTO contacts (hs_object_id) VALUES ($victim);
	DELETE FROM contacts");
like($err, qr/hubsync._capture\(\) may only run on hubsync's mirror tables/,
	'a look-alike table outside schema hubspot is refused');
is($sql->("SELECT count(*) FROM hubsync.outbox WHERE hs_object_id = $victim"), '0', 'nothing was queued');
my ($code) = $fake->request('GET', "/crm/v3/objects/contacts/$victim", undef,
	{ Authorization => 'Bearer test-token' });
is($code, 200, 'the HubSpot record was not archived');

# ---- 3. workers: pinned search_path, TRIGGER holders reported ----
$sql->("CREATE TABLE public.trigger_log (search_path text, superuser boolean);
	CREATE FUNCTION public.log_path() RETURNS trigger LANGUAGE plpgsql AS \$f\$
	BEGIN
		INSERT INTO public.trigger_log VALUES (current_setting('search_path'),
			(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user));
		RETURN NULL;
	END \$f\$;
	CREATE TRIGGER log_path AFTER INSERT ON hubspot.contacts FOR EACH ROW EXECUTE FUNCTION public.log_path();
	ALTER DATABASE postgres SET search_path = app_app_worker, pg_catalog");
# (this test's own sessions keep a safe path meanwhile)
$ENV{PGOPTIONS} = '-c search_path=pg_catalog,public';
# new worker connections pick up the database's setting
$sql->("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%'");
ok(HubSync::Node::wait_for_workers($node), 'workers restarted');
$fake->control('POST', 'ui/contacts', { properties => { email => 'rep-made@example.com' } });
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.trigger_log"),
	'a user trigger fired while the pull worker applied a HubSpot change');
is($sql->("SELECT string_agg(DISTINCT search_path, '|') FROM public.trigger_log"), 'pg_catalog, pg_temp',
	'the worker ran it with the pinned search_path, not the database\'s');
ok(!is_superuser('app_worker'), 'the database\'s search_path did not hijack the worker');
$sql->("ALTER DATABASE postgres RESET search_path; DROP TRIGGER log_path ON hubspot.contacts");
delete $ENV{PGOPTIONS};

is($sql->("SELECT trigger_grantees FROM hubsync.status WHERE object_type = 'contacts'"), '',
	'no role but the owner may create triggers on contacts yet');
$sql->("GRANT ALL ON hubspot.contacts TO app_worker");
is($sql->("SELECT trigger_grantees FROM hubsync.status WHERE object_type = 'contacts'"), '{app_worker}',
	'hubsync.status names a role granted TRIGGER on a mirror table');
$sql->("SELECT hubsync._check_alerts()");
like($sql->("SELECT payload::text FROM hubsync.alerts WHERE alert = 'trigger_grant' AND key = 'contacts'"),
	qr/"hint": "REVOKE TRIGGER ON hubspot.contacts FROM app_worker;".*"roles": \["app_worker"\]/, 'and an alert says how to take it back');
$sql->("REVOKE TRIGGER ON hubspot.contacts FROM app_worker");

# ---- 4. application_name = 'pg_restore' ----
# pushes held, so that what was queued can be counted
$sql->("SELECT hubsync.pause()");
my ($c, $d) = split /\|/, $sql->("SELECT (SELECT hubsync_id FROM hubspot.contacts WHERE email = 'hijack\@example.com'),
	hubsync.upsert('deals', 'dealname', 'restored?', '{}')");
($ok, $out, $err) = as('app_capture', "SET application_name = 'pg_restore';
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
	VALUES ('contacts', '$c', 'deals', '$d')");
ok($ok, 'the application adds an association while calling itself pg_restore') or diag($err);
is($sql->("SELECT count(*) FROM hubsync.association_outbox o
	WHERE o.from_hubsync_id = '$c' AND o.to_hubsync_id = '$d'"), '1',
	'the association was queued for HubSpot anyway');
($ok, $id, $err) = as('app_enrich', "SET application_name = 'pg_restore';
	INSERT INTO hubspot.contacts (email, lifecyclestage) VALUES ('lead2\@example.com', 'lead')
	RETURNING hubsync_id");
ok($ok, 'the application inserts a contact while calling itself pg_restore') or diag($err);
is($sql->("SELECT count(*) FROM hubsync.outbox WHERE hubsync_id = '$id'"), '1', 'the contact was queued');
is($sql->("SELECT count(*) FROM hubsync.enrichment_jobs WHERE hubsync_id = '$id'"), '1',
	'and so was its enrichment job');
# the owner's restore still skips capture
($ok, $out, $err) = $node->psql('postgres', "SET application_name = 'pg_restore';
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id, type_id)
	VALUES ('contacts', '$c', 'deals', '$d', 999)");
is($sql->("SELECT count(*) FROM hubsync.association_outbox o
	WHERE o.from_hubsync_id = '$c' AND o.to_hubsync_id = '$d'"), '1',
	'the owner\'s restore of an association queues nothing');
$sql->("SELECT hubsync.resume()");

done_testing();
