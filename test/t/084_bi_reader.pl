# The read-only (BI) role of docs/security.md can query everything in
# schema hubspot (DESIGN: SELECT on every relation of hubspot is all a BI
# role needs).  With the recipe run as written and real data (records
# pushed through the fake HubSpot, merges applied from its webhooks, a
# custom object added with track_object), bi_reader must be able to:
#   - SELECT * from EVERY relation of schema hubspot, enumerated from
#     pg_class, and see what the owner sees (merged-away records left out
#     the same way);
#   - call EVERY function of schema hubspot, every function the hubspot
#     views call and every hubsync function docs/bi.md names, with the
#     sample arguments of %sample below (a function with arguments and no
#     sample fails the test: a new function must be added there);
#   - run every ```sql block of docs/bi.md, and read every hubsync relation
#     docs/security.md ("Who can read what") says everyone can read.
# The sweep is also run with a grant taken away and with a function that
# has no sample, to show that it fails then.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

# sample arguments of the functions the sweep calls, by regprocedure
my %sample = (
	'hubsync.invoice_aging(date)' => "'2025-06-30'",
	'hubsync.billing_periods_per_year(text)' => "'annually'",
);

my $fake = HubSync::FakeHubSpot->start;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('bi_reader', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url });
sub q1 { return $node->safe_psql('postgres', $_[0]); }
q1("SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks",
	webhookPropertyChangeOnCreate => JSON::PP::true);
ok(HubSync::Node::wait_for_state($node, 'hubsync webhook', 'running'), 'webhook worker runs');

# settled -- pushes done and HubSpot's news applied
sub settled
{
	return 0 unless HubSync::Node::wait_outbox_empty($node);
	my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	return $f->{done} && $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'")
	  && HubSync::Node::wait_outbox_empty($node);
}

# the recipe, exactly as docs/security.md gives it (091 runs it too)
my ($recipe) = slurp_file('docs/security.md') =~ /```sql\n(-- read-only BI.*?)```/s;
ok(defined $recipe && $recipe =~ /CREATE ROLE bi_reader/, 'docs/security.md has the BI recipe');
q1($recipe);

# --- data, so that the views run their joins and filters
q1("INSERT INTO hubspot.contacts (email, properties)
	VALUES ('bi1\@example.com', '{\"hs_analytics_source\": \"ORGANIC_SEARCH\"}'), ('bi2\@example.com', '{}');
	INSERT INTO hubspot.deals (hubsync_id, dealname, amount, dealstage, pipeline, closedate, deal_currency_code, hubspot_owner_id)
	VALUES ('00000000-0000-0000-0000-0000000000a1', 'Won', 1000, 'closedwon', 'default', now(), 'EUR', '11'),
	       ('00000000-0000-0000-0000-0000000000a2', 'Won too', 500, 'closedwon', 'default', now(), 'EUR', '11'),
	       (DEFAULT, 'Open', 700, 'appointmentscheduled', 'default', NULL, 'EUR', '12');
	INSERT INTO hubspot.invoices (hubsync_id, hs_currency, hs_due_date, hs_invoice_status, hs_balance_due)
	VALUES ('00000000-0000-0000-0000-0000000000b1', 'EUR', current_date - 45, 'open', 120),
	       ('00000000-0000-0000-0000-0000000000b2', 'EUR', current_date - 100, 'open', 80),
	       (DEFAULT, 'USD', current_date + 3, 'open', 5);
	INSERT INTO hubspot.commerce_payments (hs_latest_status, hs_initiated_date, hs_initial_amount, hs_refunds_amount, hs_currency_code)
	VALUES ('succeeded', now(), 100, NULL, 'EUR'), ('refunded', now(), 30, 30, 'EUR');
	INSERT INTO hubspot.subscriptions (hs_status, hs_start_date, hs_recurring_revenue, hs_recurring_billing_frequency, hs_currency_code)
	VALUES ('active', current_date - 60, 120, 'annually', 'EUR'), ('active', current_date - 30, 10, 'monthly', 'EUR');");
ok(settled(), 'records pushed to HubSpot');
sub hsid { my ($t, $hid) = @_; return q1("SELECT hs_object_id FROM hubspot.$t WHERE hubsync_id = '$hid'"); }
for my $m ([ 'deals', 'a1', 'a2' ], [ 'invoices', 'b1', 'b2' ])
{
	my ($t, $keep, $gone) = @$m;
	my ($k, $g) = (hsid($t, "00000000-0000-0000-0000-0000000000$keep"), hsid($t, "00000000-0000-0000-0000-0000000000$gone"));
	$fake->control('POST', "ui/$t/merge", { primaryObjectId => "$k", objectIdToMerge => "$g" });
}
ok(settled(), 'merges applied');
cmp_ok(q1("SELECT count(DISTINCT object_type) FROM hubsync.merges"), '>=', 2, 'deals and invoices merged');

# a mirror table added later: the recipe's default privileges cover it
my ($st) = $fake->request('POST', '/crm/v3/schemas', { name => 'bi_thing',
	labels => { singular => 'BI thing', plural => 'BI things' },
	primaryDisplayProperty => 'label', requiredProperties => ['label'],
	properties => [ { name => 'label', label => 'Label', type => 'string', fieldType => 'text' } ] },
	{ Authorization => 'Bearer test-token' });
is($st, 201, 'custom object created in HubSpot');
is(q1("SELECT hubsync.track_object('p_bi_thing')"), 'hubspot.bi_thing', 'track_object made a mirror table');
q1("INSERT INTO hubspot.bi_thing (label) VALUES ('one')");
ok(settled(), 'custom record pushed');

# as -- run SQL as a role: (ok, stdout, stderr)
sub as
{
	my ($role, $q) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $q, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ], on_error_stop => 1);
	return ($rc == 0, $out, $err);
}
sub lines { return grep { $_ ne '' } split /\n/, $_[0]; }

# the functions to call: those of schema hubspot, those the hubspot views
# call, and the hubsync functions docs/bi.md names
my $bi_page = slurp_file('docs/bi.md');
my %named = map { $_ => 1 } $bi_page =~ /\bhubsync\.(\w+)\(/g;
my $named = join(',', map { "'$_'" } sort keys %named) || "''";
sub functions
{
	return lines(q1("SELECT p.oid::regprocedure || '|' || p.proname || '|' || p.pronargs FROM pg_proc p
		WHERE p.pronamespace = 'hubspot'::regnamespace
		   OR (p.pronamespace = 'hubsync'::regnamespace AND p.proname IN ($named))
		   OR p.oid IN (SELECT d.refobjid FROM pg_depend d
		                JOIN pg_rewrite w ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
		                JOIN pg_class c ON c.oid = w.ev_class
		                WHERE c.relnamespace = 'hubspot'::regnamespace AND d.refclassid = 'pg_proc'::regclass
		                  AND d.refobjid >= 16384)
		ORDER BY 1"));
}

# sweep -- every relation and function of the contract, as bi_reader;
# returns the failures ("what: error") and how many things it tried
sub sweep
{
	my @fail;
	my $n = 0;
	for my $rel (lines(q1("SELECT c.oid::regclass FROM pg_class c
		WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1")))
	{
		$n++;
		my $digest = "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM $rel t";
		my ($ok, $out, $err) = as('bi_reader', "SELECT * FROM $rel LIMIT 1; $digest");
		if (!$ok) { push @fail, "$rel: $err"; next; }
		my $mine = (lines($out))[-1];
		my $owners = q1($digest);
		push @fail, "$rel: bi_reader sees $mine, the owner $owners" if $mine ne $owners;
	}
	for my $f (functions())
	{
		$n++;
		my ($sig, $name, $nargs) = split /\|/, $f;
		(my $qname = $sig) =~ s/\(.*//s;
		my $args = $nargs == 0 ? '' : $sample{$sig};
		if (!defined $args) { push @fail, "$sig: no sample arguments (add them to %sample of test/t/084_bi_reader.pl)"; next; }
		my ($ok, $out, $err) = as('bi_reader', "SELECT * FROM $qname($args) LIMIT 1");
		push @fail, "$sig: $err" unless $ok;
	}
	return (\@fail, $n);
}

my ($fail, $n) = sweep();
is_deeply($fail, [], "bi_reader reads every relation and calls every function of the contract ($n)")
  or diag(join("\n", @$fail));
ok((grep { /^hubsync\.invoice_aging\(date\)\|/ } functions()) && (grep { /billing_periods_per_year/ } functions()),
	'the sweep calls the functions behind the views');
ok(q1("SELECT count(*) FROM pg_class WHERE relnamespace = 'hubspot'::regnamespace AND relname = 'bi_thing'"),
	'the sweep covers the tracked custom object');

# the seed reaches every view, and the merged-away records are left out
for my $v (lines(q1("SELECT c.oid::regclass FROM pg_class c
	WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1")))
{
	my ($ok, $out) = as('bi_reader', "SELECT count(*) FROM $v");
	cmp_ok($out, '>', 0, "bi_reader sees rows in $v");
}
# the BI model's tables: owners and pipelines copied from HubSpot, the
# histories the triggers keep
ok($node->poll_query_until('postgres', "SELECT synced_at IS NOT NULL FROM hubsync.metadata_sync"),
	'owners and pipelines copied');
for my $t (qw(owners pipelines pipeline_stages deal_stage_history subscription_history))
{
	my ($ok, $out) = as('bi_reader', "SELECT count(*) FROM hubspot.$t");
	cmp_ok($out, '>', 0, "bi_reader sees rows in hubspot.$t");
}
my ($ok, $out) = as('bi_reader', "SELECT string_agg(stage_label || ' ' || won, ', ' ORDER BY stage_order) FROM hubspot.deal_stages");
is($out, 'Appointment Scheduled false, Closed Won true', 'deal_stages: labels and won from the stage metadata for bi_reader');
($ok, $out) = as('bi_reader', "SELECT deals || ' ' || amount FROM hubspot.revenue_by_month");
is($out, '1 1000', 'revenue_by_month: the merged deal counts once for bi_reader');
($ok, $out) = as('bi_reader', "SELECT string_agg(bucket || ' ' || currency || ' ' || balance, ', ' ORDER BY bucket, currency)
	FROM hubspot.invoice_aging");
is($out, '0-30 USD 5, 31-60 EUR 120', 'invoice_aging: the merged invoice counts once for bi_reader');

# --- docs/bi.md: every statement of every ```sql block, as bi_reader
my @blocks = $bi_page =~ /```sql\n(.*?)```/sg;
ok(@blocks >= 1, "docs/bi.md has example queries");
my $examples = 0;
for my $b (@blocks)
{
	# each statement on its own, named by the comment above it
	for my $stmt (grep { /\S/ } split /;[ \t]*\n/, $b)
	{
		(my $code = $stmt) =~ s/^\s*--.*\n//mg;
		next unless $code =~ /\S/;
		$examples++;
		my ($ok, $out, $err) = as('bi_reader', "$code;");
		ok($ok, 'bi_reader runs the docs/bi.md example: ' . ($code =~ s/\s+/ /gr)) or diag($err);
	}
}
cmp_ok($examples, '>=', 5, "docs/bi.md examples run ($examples)");

# --- docs/security.md: what everyone may read, as bi_reader
my ($who) = slurp_file('docs/security.md') =~ /## Who can read what\n(.*?)\n## /s;
my @everyone;
for my $row (grep { /^\|.*\|\s*everyone/ } split /\n/, $who // '')
{
	my ($cell) = $row =~ /^\|([^|]*)\|/;
	push @everyone, map { s/^hubsync\.//r } grep { !/\(/ } $cell =~ /`([^`]+)`/g;
}
ok(@everyone >= 5, 'docs/security.md lists what everyone may read (' . scalar(@everyone) . ')');
for my $r (@everyone)
{
	my ($ok, $out, $err) = as('bi_reader', "SELECT * FROM hubsync.$r LIMIT 1");
	ok($ok, "bi_reader reads hubsync.$r (everyone may)") or diag($err);
}

# --- the sweep fails when something is unreadable ...
q1('REVOKE SELECT ON hubsync.merges FROM PUBLIC');
($fail) = sweep();
ok((grep { /^hubspot\.invoice_aging: .*permission denied for table merges/s } @$fail),
	'without SELECT on hubsync.merges the sweep reports hubspot.invoice_aging') or diag(join("\n", @$fail));
q1('GRANT SELECT ON hubsync.merges TO PUBLIC');
q1('REVOKE SELECT ON hubspot.bi_thing FROM bi_reader');
($fail) = sweep();
ok((grep { /^hubspot\.bi_thing: .*permission denied/s } @$fail), 'an unreadable mirror table is reported');
q1('GRANT SELECT ON hubspot.bi_thing TO bi_reader');
# ... and when a function has no sample arguments
q1("CREATE FUNCTION hubspot.bi_probe(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n'");
($fail) = sweep();
is_deeply($fail, [ 'hubspot.bi_probe(integer): no sample arguments (add them to %sample of test/t/084_bi_reader.pl)' ],
	'a new function without sample arguments is reported');
q1('DROP FUNCTION hubspot.bi_probe(integer)');
($fail) = sweep();
is_deeply($fail, [], 'all readable again');

done_testing();
