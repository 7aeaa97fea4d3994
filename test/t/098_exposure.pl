# Exposure of CRM values and HubSpot's messages to roles that cannot read
# the mirror.  The attacks, each as a role with only LOGIN ("nobody") and
# as an application role with the grants of docs/security.md (Roles) on
# another object type ("deals_app"): read reconciliation drift (local and remote values), the
# poller's, backfill's and reconciliation's errors, other types' records in
# hubsync.record_status, HubSpot's message in a dead_letter alert heard on
# LISTEN hubsync_alerts; probe a record's state with hubsync.await_synced
# and hold a backend with an endless timeout.  The legitimate paths keep
# working: the owner and the recipes' roles read what they may, an
# operator granted hubsync.status reads it (without HubSpot's messages),
# await_synced waits for a role that can read the record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('exposure', conf => {
	'hubsync.reconcile_at' => '', 'hubsync.max_attempts' => 1, 'hubsync.alert_interval' => '1h' });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# roles: the recipes of docs/security.md (Roles) as written, a role with
# LOGIN only, another team's application (the recipe's application grants, on deals only) and
# an operator granted the status view
my ($recipe) = slurp_file('docs/security.md') =~ /```sql\n(-- read-only BI.*?)```/s;
ok(defined $recipe, 'docs/security.md has the role recipes');
$sql->($recipe);
$sql->(q{
	CREATE ROLE nobody LOGIN;
	CREATE ROLE deals_app LOGIN;
	GRANT SELECT, INSERT, UPDATE, DELETE ON hubspot.deals TO deals_app;
	GRANT SELECT ON hubsync.status, hubsync.record_status TO deals_app;
	CREATE ROLE ops LOGIN;
	GRANT SELECT ON hubsync.status TO ops;
});

# as -- run SQL as a role (verbose errors, so the SQLSTATE shows);
# returns (ok, stdout, stderr)
sub as
{
	my ($role, $q) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', "\\set VERBOSITY verbose\n$q", stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ], on_error_stop => 1);
	return ($rc == 0, $out, $err);
}
sub ok_as
{
	my ($role, $q, $name) = @_;
	my ($ok, $out, $err) = as($role, $q);
	ok($ok, "$role: $name") or diag($err);
	return $out;
}
sub refused_as
{
	my ($role, $q, $name, $re) = @_;
	my ($ok, $out, $err) = as($role, $q);
	ok(!$ok && $err =~ $re, "$role: $name") or diag("ok=$ok out=$out err=$err");
}

# everything a role can read in schemas hubsync and hubspot, as text
sub readable_text
{
	my ($role) = @_;
	return ok_as($role, q{
		CREATE TEMP TABLE seen (rel text, t text);
		DO $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
			         WHERE c.relnamespace IN ('hubsync'::regnamespace, 'hubspot'::regnamespace)
			           AND c.relkind IN ('r', 'v', 'm', 'p') AND has_table_privilege(c.oid, 'SELECT')
			LOOP
				EXECUTE format('INSERT INTO pg_temp.seen SELECT %L, t::text FROM %s t', r.rel, r.rel);
			END LOOP;
		END $$;
		SELECT rel || ': ' || t FROM pg_temp.seen;}, 'read every relation it may');
}

# ---- a LOGIN-only role listens for alerts ----
my $listener = $node->background_psql('postgres', extra_params => [ '-U', 'nobody' ]);
$listener->query_safe('LISTEN hubsync_alerts');
sub heard
{
	my ($kind) = @_;
	for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
	{
		my $out = $listener->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "hubsync_alerts" with payload "(.*)" received/g)
		{
			my $a = decode_json($1);
			return ($a, $1) if $a->{alert} eq $kind;
		}
		select(undef, undef, undef, 0.1);
	}
	return;
}

# ---- a contact HubSpot refuses for good, its message quoting the value ----
my $leak_email = 'leak-SECRETVALUE@example.com';
$fake->control('POST', 'faults', { queue => [
	{ status => 400, match => '/batch/', count => 1,
	  body => { status => 'error', category => 'VALIDATION_ERROR',
		message => "Property values were not valid: $leak_email is not a valid email" } } ] });
my $dead = $sql->("INSERT INTO hubspot.contacts (email) VALUES ('$leak_email') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$dead'"),
	'the contact is dead-lettered');
like($sql->("SELECT message FROM hubsync.dead_letters WHERE hubsync_id = '$dead'"), qr/SECRETVALUE/,
	'owner: the dead letter keeps HubSpot\'s message');

# item 8: the alert a LOGIN-only role hears names the record, not HubSpot's text
my ($alert, $raw) = heard('dead_letter');
ok($alert, 'nobody hears the dead_letter alert');
is(($alert->{object_type} // '') . '|' . ($alert->{hubsync_id} // '') . '|' . ($alert->{status} // '')
	. '|' . ($alert->{category} // ''), "contacts|$dead|400|VALIDATION_ERROR",
	'the alert names the object type, the record, the status and the category');
is($alert->{dead_letter_id} // '', $sql->("SELECT id FROM hubsync.dead_letters WHERE hubsync_id = '$dead'"),
	'and the dead letter that holds the message');
ok(!exists $alert->{message} && $raw !~ /SECRETVALUE|not a valid email/,
	'nobody: the alert carries no HubSpot message') or diag($raw);
unlike($sql->("SELECT payload::text FROM hubsync.alerts WHERE alert = 'dead_letter'"), qr/SECRETVALUE/,
	'hubsync.alerts keeps the same payload');
$listener->quit;

# ---- item 9: await_synced ----
my $cid = ok_as('app_writer', "INSERT INTO hubspot.contacts (email) VALUES ('app\@example.com') RETURNING hubsync_id",
	'INSERT a contact');
is(ok_as('app_writer', "SELECT hubsync.await_synced('contacts', '$cid', '60s')", 'await its own write'),
	'synced', 'app_writer: await_synced waits until HubSpot has it');
refused_as('nobody', "SELECT hubsync.await_synced('contacts', '$cid', '1s')",
	'await_synced on contacts is refused', qr/42501: permission denied to await records of hubspot\.contacts.*\nHINT:.*SELECT on hubspot\.contacts/);
refused_as('nobody', "SELECT hubsync.await_synced('contacts', '$dead', '1s')",
	'cannot probe a dead-lettered record either', qr/42501/);
refused_as('deals_app', "SELECT hubsync.await_synced('contacts', '$cid', '1s')",
	'await_synced on another team\'s contacts is refused', qr/42501: .*\nHINT:.*hubspot\.contacts/);
my $did = ok_as('deals_app', "INSERT INTO hubspot.deals (dealname) VALUES ('D1') RETURNING hubsync_id", 'INSERT a deal');
is(ok_as('deals_app', "SELECT hubsync.await_synced('deals', '$did', '60s')", 'await its deal'),
	'synced', 'deals_app: await_synced on its own type works');
refused_as('app_writer', "SELECT hubsync.await_synced('contacts', '$cid', '2 hours')",
	'a timeout over 1 hour is refused', qr/22023: timeout of hubsync\.await_synced\(\) must be at most 1 hour/);
refused_as('app_writer', "SELECT hubsync.await_synced('contacts', '$cid', NULL)",
	'a NULL (endless) timeout is refused', qr/22023/);
is(ok_as('app_writer', "SELECT hubsync.await_synced('contacts', '$cid', '1 hour')", '1 hour is allowed'),
	'synced', 'the maximum timeout is accepted');
refused_as('app_writer', "BEGIN; UPDATE hubspot.contacts SET firstname = 'X' WHERE hubsync_id = '$cid';
	SELECT hubsync.await_synced('contacts', '$cid', '1s');", 'still refuses to wait inside the changing transaction',
	qr/55000: the change to \S+ is not committed yet/);
refused_as('app_writer', "BEGIN; DELETE FROM hubspot.contacts WHERE hubsync_id = '$cid';
	SELECT hubsync.await_synced('contacts', '$cid', '1s');", '... a delete too', qr/not committed yet/);

# record_status: only the types a role may read
is(ok_as('nobody', 'SELECT count(*) FROM hubsync.record_status', 'read record_status'), '0',
	'nobody sees no record');
is(ok_as('deals_app', "SELECT string_agg(DISTINCT object_type, ',') FROM hubsync.record_status", 'read record_status'),
	'deals', 'deals_app sees deals only');
like(ok_as('app_writer', "SELECT status || ' ' || last_error FROM hubsync.record_status WHERE hubsync_id = '$dead'",
	'read a failed contact'), qr/^failed VALIDATION_ERROR: .*SECRETVALUE/, 'app_writer sees the failure and HubSpot\'s message');
like(ok_as('bi_reader', "SELECT status FROM hubsync.record_status WHERE hubsync_id = '$dead'", 'read record_status'),
	qr/^failed$/, 'bi_reader too');

# ---- item 8: the poller's, backfill's and reconciliation's tables ----
# the workers stop, so that the rows below stay as written
$node->append_conf('postgresql.conf', "hubsync.enabled = off\n");
$node->reload;
ok(HubSync::Node::wait_for_state($node, 'hubsync pull', 'idle: disabled'), 'pull worker idles');
ok(HubSync::Node::wait_for_state($node, 'hubsync push', 'idle: disabled'), 'push worker idles');
$sql->(qq{
	INSERT INTO hubsync.poll_state (object_type, last_error) VALUES
		('contacts', 'HTTP 400: SECRETPOLL is not a valid filter value'), ('deals', 'HTTP 500: deals poll failed')
	ON CONFLICT (object_type) DO UPDATE SET last_error = EXCLUDED.last_error;
	INSERT INTO hubsync.backfills (object_type, state, last_error) VALUES ('contacts', 'failed', 'SECRETBACKFILL')
	ON CONFLICT (object_type) DO UPDATE SET state = 'failed', last_error = EXCLUDED.last_error;
	WITH r AS (INSERT INTO hubsync.reconcile_runs (trigger, object_type, repair, state, error)
	           VALUES ('manual', 'contacts', false, 'failed', 'SECRETRUN') RETURNING id)
	INSERT INTO hubsync.reconcile_drift (run_id, object_type, hubsync_id, hs_object_id, kind, property,
	                                     local_value, remote_value, action)
	SELECT r.id, 'contacts', '$cid', 1, 'mismatch', 'email', 'SECRETLOCAL\@example.com', 'SECRETREMOTE\@example.com',
	       'reported' FROM r;
	INSERT INTO hubsync.reconcile_runs (trigger, object_type, repair, state, error)
	VALUES ('daily', NULL, false, 'failed', 'SECRETALLRUN');
});
my @markers = qw(SECRETVALUE SECRETPOLL SECRETBACKFILL SECRETRUN SECRETALLRUN SECRETLOCAL SECRETREMOTE);

for my $role ('nobody', 'deals_app')
{
	my $text = readable_text($role);
	my @found = grep { index($text, $_) >= 0 } @markers;
	is(join(',', @found), '', "$role: no contact value or HubSpot message about contacts in any relation it can read");
}
is(ok_as('nobody', 'SELECT (SELECT count(*) FROM hubsync.reconcile_drift) + (SELECT count(*) FROM hubsync.poll_state)
	+ (SELECT count(*) FROM hubsync.backfills) + (SELECT count(*) FROM hubsync.reconcile_runs)', 'count the rows'),
	'0', 'nobody: drift, poll state, backfills and runs show no row');
is(ok_as('deals_app', "SELECT (SELECT string_agg(object_type, ',') FROM hubsync.poll_state WHERE last_error IS NOT NULL)
	|| '|' || (SELECT count(*) FROM hubsync.reconcile_drift) || '|' || (SELECT count(*) FROM hubsync.reconcile_runs)",
	'read the poller\'s table'), 'deals|0|0', 'deals_app: its own type\'s poll error, no contacts drift or runs');
is(ok_as('deals_app', "SELECT string_agg(object_type || '=' || coalesce(poll_error, '-'), ',' ORDER BY object_type)
	FROM hubsync.status WHERE object_type IN ('contacts', 'deals')", 'read hubsync.status'),
	'contacts=-,deals=HTTP 500: deals poll failed', 'deals_app: status shows only its own type\'s poll error');

# the legitimate readers
my $bi = readable_text('bi_reader');
is(join(',', grep { index($bi, $_) < 0 } @markers), '', 'bi_reader (SELECT on every mirror table) reads them all');
is(ok_as('bi_reader', "SELECT local_value || ' ' || remote_value FROM hubsync.reconcile_drift", 'read drift'),
	'SECRETLOCAL@example.com SECRETREMOTE@example.com', 'bi_reader: drift values');
is(ok_as('app_writer', "SELECT poll_error FROM hubsync.status WHERE object_type = 'contacts'", 'read status'),
	'HTTP 400: SECRETPOLL is not a valid filter value', 'app_writer: status shows the poll error');
is(ok_as('ops', "SELECT count(*) || '|' || count(poll_error) || '|' || count(*) FILTER (WHERE backfill = 'failed')
	FROM hubsync.status", 'read hubsync.status'),
	$sql->('SELECT count(*) FROM hubsync.object_types') . '|0|1',
	'ops: every type\'s status and backfill state, no HubSpot message');
is($sql->("SELECT count(*) FROM hubsync.reconcile_drift") . '|' . $sql->("SELECT last_error FROM hubsync.backfill_progress"),
	'1|SECRETBACKFILL', 'the owner reads everything');
for my $view (split /\n/, $sql->("SELECT c.oid::regclass FROM pg_class c
	WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind = 'v' ORDER BY 1"))
{
	ok_as('bi_reader', "SELECT count(*) FROM $view", "read the BI view $view");
}

done_testing();
