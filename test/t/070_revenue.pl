# Revenue data end to end through the fake HubSpot: exact conversion of
# every value type both ways (the string HubSpot receives and the value
# that comes back), map_property, a value that cannot convert, custom
# objects with track_object, idempotent upserts by a custom unique
# property, the billing transaction with its origin, postgres-owned
# revenue properties, merges counted once, and an app that LISTENs and
# reacts to a failed payment.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_webhooks('revenue',
	fake_config => { webhookPropertyChangeOnCreate => JSON::PP::true });

sub q1 { return $node->safe_psql('postgres', $_[0]); }
my $auth = { Authorization => 'Bearer test-token' };
sub api { my ($m, $p, $b) = @_; return $fake->request($m, $p, $b, $auth); }

# settled -- pushes and associations left, HubSpot's news applied
sub settled { return HubSync::Node::all_settled($node, $fake); }
sub hs { my ($t, $id) = @_; return $fake->control('GET', "records/$t/$id")->{properties}; }
sub hsid { my ($t, $hid) = @_; return q1("SELECT hs_object_id FROM hubspot.$t WHERE hubsync_id = '$hid'"); }

# ---- typed properties HubSpot defines: bool and multi-select ----
is(q1("SELECT hubsync.map_property('invoices', 'hs_invoice_billable')"), 'boolean',
	'bool property mapped as boolean (type read from HubSpot)');
is(q1("SELECT hubsync.map_property('tickets', 'hs_ticket_category')"), 'text[]',
	'multi-select property mapped as text[]');
is(q1("SELECT hubsync.map_property('products', 'hs_folder', 'numeric')"), 'numeric',
	'a string property mapped as numeric on request');
my ($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.map_property('deals', 'no_such_prop')");
like($e, qr/HubSpot has no property "no_such_prop" on deals/, 'unknown property: clear error');
($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.map_property('deals', 'amount', 'text')");
like($e, qr/already a numeric column/, 'remapping to another type: clear error');

# ---- outbound: the exact strings HubSpot receives ----
q1("SET TIME ZONE 'Europe/Berlin';
	INSERT INTO hubspot.deals (hubsync_id, dealname, amount, dealstage, pipeline, closedate, deal_currency_code)
	VALUES ('00000000-0000-0000-0000-0000000000d1', 'Big', 12345678901234567890.123456789, 'closedwon', 'default',
	        '2025-06-30 14:00:00.123', 'EUR');
	INSERT INTO hubspot.line_items (hubsync_id, name, price, quantity)
	VALUES ('00000000-0000-0000-0000-0000000000d2', 'Tiny', -0.000001, 3);
	INSERT INTO hubspot.invoices (hubsync_id, hs_currency, hs_due_date, hs_invoice_billable, hs_amount_billed)
	VALUES ('00000000-0000-0000-0000-0000000000d3', 'EUR', '2025-07-01', true, 0.10);
	INSERT INTO hubspot.tickets (hubsync_id, subject, hs_pipeline, hs_pipeline_stage, hs_ticket_category)
	VALUES ('00000000-0000-0000-0000-0000000000d4', 'Refund', '0', '1', '{PRODUCT_ISSUE,BILLING_ISSUE}');");
ok(settled(), 'records pushed');
my $deal = hsid('deals', '00000000-0000-0000-0000-0000000000d1');
my $li = hsid('line_items', '00000000-0000-0000-0000-0000000000d2');
my $inv = hsid('invoices', '00000000-0000-0000-0000-0000000000d3');
my $tk = hsid('tickets', '00000000-0000-0000-0000-0000000000d4');
is(hs('deals', $deal)->{amount}, '12345678901234567890.123456789', 'large amount sent exactly');
is(hs('deals', $deal)->{closedate}, '2025-06-30T12:00:00.123Z', 'datetime sent as ISO UTC with ms');
is(hs('line_items', $li)->{price}, '-0.000001', 'negative many-decimal amount sent exactly');
is(hs('invoices', $inv)->{hs_due_date}, '2025-07-01', 'date sent as YYYY-MM-DD');
is(hs('invoices', $inv)->{hs_invoice_billable}, 'true', 'boolean sent as true');
is(hs('invoices', $inv)->{hs_amount_billed}, '0.10', 'trailing zeros kept');
is(hs('tickets', $tk)->{hs_ticket_category}, 'PRODUCT_ISSUE;BILLING_ISSUE', 'multi-select sent joined with ;');
q1("UPDATE hubspot.deals SET amount = NULL WHERE hubsync_id = '00000000-0000-0000-0000-0000000000d1'");
ok(settled(), 'NULL pushed');
ok(!defined(hs('deals', $deal)->{amount}) || hs('deals', $deal)->{amount} eq '', 'NULL sent as empty');

# ---- inbound: what comes back from HubSpot ----
$fake->control('POST', "ui/deals/$deal", { properties => { amount => '-98765432109876543210.000000001',
	closedate => '1751284800000' } });
$fake->control('POST', "ui/invoices/$inv", { properties => { hs_due_date => '2025-08-01',
	hs_invoice_billable => 'false', hs_amount_billed => '1500.00' } });
$fake->control('POST', "ui/tickets/$tk", { properties => { hs_ticket_category => 'FEATURE_REQUEST;GENERAL_INQUIRY' } });
ok(settled(), 'HubSpot edits applied');
is(q1("SELECT amount::text || ' ' || (closedate AT TIME ZONE 'UTC')::text FROM hubspot.deals WHERE hs_object_id = $deal"),
	'-98765432109876543210.000000001 2025-06-30 12:00:00', 'large negative amount and epoch-ms datetime arrive exactly');
is(q1("SELECT hs_due_date || ' ' || hs_invoice_billable || ' ' || hs_amount_billed FROM hubspot.invoices WHERE hs_object_id = $inv"),
	'2025-08-01 false 1500.00', 'date, boolean and amount arrive typed');
is(q1("SELECT hs_ticket_category::text FROM hubspot.tickets WHERE hs_object_id = $tk"),
	'{FEATURE_REQUEST,GENERAL_INQUIRY}', 'multi-select arrives as text[]');
$fake->control('POST', "ui/deals/$deal", { properties => { amount => '' } });
ok(settled(), 'clear applied');
is(q1("SELECT coalesce(amount::text, 'NULL') FROM hubspot.deals WHERE hs_object_id = $deal"), 'NULL', 'empty string arrives as NULL');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'out' AND hubsync_id = '00000000-0000-0000-0000-0000000000d1' AND at > now() - interval '1 hour' AND properties ? 'amount' AND properties->>'amount' = '-98765432109876543210.000000001'"),
	'0', 'nothing echoed back to HubSpot');

# a value that cannot convert is kept and reported, and never blocks
my $prod = $fake->control('POST', 'ui/products', { properties => { name => 'Widget', price => '9.99' } })->{id};
ok(settled(), 'product arrived');
$fake->control('POST', "ui/products/$prod", { properties => { hs_folder => 'n/a', price => '10.50' } });
ok(settled(), 'edit applied');
is(q1("SELECT coalesce(hs_folder::text, 'NULL') || ' ' || price || ' ' || (properties->>'hs_folder') FROM hubspot.products WHERE hs_object_id = $prod"),
	'NULL 10.50 n/a', 'unconvertible value kept in properties, the rest applied');
is(q1("SELECT property || '=' || value FROM hubsync.unconverted_values('products')"), 'hs_folder=n/a',
	'and reported by unconverted_values()');

# ---- a property created in HubSpot later appears in properties; map_property fills its column ----
my ($st) = api('POST', '/crm/v3/properties/invoices', { name => 'erp_invoice_id', label => 'ERP invoice id',
	type => 'string', fieldType => 'text', groupName => 'invoiceinformation', hasUniqueValue => JSON::PP::true });
ok($st == 201 || $st == 200, 'unique property created in HubSpot');
($st) = api('POST', '/crm/v3/properties/invoices', { name => 'erp_paid_on', label => 'ERP paid on',
	type => 'date', fieldType => 'date', groupName => 'invoiceinformation' });
$fake->control('POST', "ui/invoices/$inv", { properties => { erp_paid_on => '2025-09-01' } });
ok(settled(), 'new property edit applied');
is(q1("SELECT properties->>'erp_paid_on' FROM hubspot.invoices WHERE hs_object_id = $inv"), '2025-09-01',
	'new HubSpot property appears in properties');
my $before = q1("SELECT count(*) FROM hubsync.changes");
is(q1("SELECT hubsync.map_property('invoices', 'erp_paid_on')"), 'date', 'mapped with the type from HubSpot');
is(q1("SELECT hs_object_id FROM hubspot.invoices WHERE erp_paid_on = '2025-09-01' AND NOT properties ? 'erp_paid_on'"), $inv,
	'column filled from properties');
is(q1("SELECT count(*) FROM hubsync.outbox"), '0', 'filling pushes nothing');
$fake->control('POST', "ui/invoices/$inv", { properties => { erp_paid_on => '2025-09-02' } });
ok(settled(), 'sync goes on');
is(q1("SELECT erp_paid_on FROM hubspot.invoices WHERE hs_object_id = $inv"), '2025-09-02', 'new column kept in sync');

# ---- custom object: track_object ----
($st, my $schema) = api('POST', '/crm/v3/schemas', { name => 'erp_subscription',
	labels => { singular => 'ERP subscription', plural => 'ERP subscriptions' },
	primaryDisplayProperty => 'plan', requiredProperties => ['plan'],
	properties => [ { name => 'plan', label => 'Plan', type => 'string', fieldType => 'text' },
		{ name => 'seats', label => 'Seats', type => 'number', fieldType => 'number' },
		{ name => 'renews_on', label => 'Renews on', type => 'date', fieldType => 'date' },
		{ name => 'addons', label => 'Add-ons', type => 'enumeration', fieldType => 'checkbox',
		  options => [ { label => 'A', value => 'a' }, { label => 'B', value => 'b' } ] } ] });
is($st, 201, 'custom object created in HubSpot');
my $tid = $schema->{objectTypeId};
is(q1("SELECT hubsync.track_object('p_erp_subscription')"), 'hubspot.erp_subscription', 'track_object made a table');
is(q1("SELECT hubsync.track_object('$tid')"), 'hubspot.erp_subscription', 'tracking again (by id) changes nothing');
is(q1("SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attname)
	FROM pg_attribute WHERE attrelid = 'hubspot.erp_subscription'::regclass AND attname IN ('plan', 'seats', 'renews_on', 'addons')"),
	'addons:text[],plan:text,renews_on:date,seats:numeric', 'typed columns from the schema');
is(q1("SELECT object_type_id || ' ' || api_name || ' ' || coalesce(webhook_prefix, 'object.*') || ' ' || last_modified_property
	FROM hubsync.object_types WHERE object_type = 'erp_subscription'"), "$tid $tid object.* hs_lastmodifieddate",
	'object_types has what webhooks and the poller need');
($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.track_object('p_nothing_here')");
like($e, qr/HubSpot has no custom object "p_nothing_here"/, 'unknown custom object: clear error');
q1("INSERT INTO hubspot.erp_subscription (hubsync_id, plan, seats, renews_on, addons)
	VALUES ('00000000-0000-0000-0000-0000000000e1', 'gold', 12.5, '2026-01-01', '{a,b}')");
ok(settled(), 'custom record pushed');
my $cid = hsid('erp_subscription', '00000000-0000-0000-0000-0000000000e1');
like($cid, qr/^\d+$/, 'custom record in HubSpot');
my $cp = hs($tid, $cid);
is(join(' ', map { $cp->{$_} } qw(plan seats renews_on addons)), 'gold 12.5 2026-01-01 a;b', 'custom properties sent typed');
$fake->control('POST', "ui/$tid/$cid", { properties => { seats => '40', plan => 'platinum' } });
ok(settled(), 'custom record edit applied');
is(q1("SELECT plan || ' ' || seats FROM hubspot.erp_subscription WHERE hs_object_id = $cid"), 'platinum 40',
	'HubSpot edit of a custom record arrives (object.propertyChange by objectTypeId)');
my $c2 = $fake->control('POST', "ui/$tid", { properties => { plan => 'silver', seats => '3' } })->{id};
ok(settled(), 'custom record created in HubSpot applied');
is(q1("SELECT plan FROM hubspot.erp_subscription WHERE hs_object_id = $c2"), 'silver', 'HubSpot create of a custom record arrives');

# ---- finance: idempotent upsert by a custom unique property ----
my $h1 = q1("SELECT hubsync.upsert('invoices', 'erp_invoice_id', 'INV-1001',
	'{\"hs_currency\": \"EUR\", \"hs_amount_billed\": \"1500.00\", \"hs_balance_due\": \"1500.00\", \"hs_invoice_status\": \"draft\", \"hs_due_date\": \"2025-10-01\"}')");
ok(settled(), 'invoice upserted');
my $inv2 = hsid('invoices', $h1);
is(hs('invoices', $inv2)->{erp_invoice_id}, 'INV-1001', 'custom unique property in HubSpot');
my $seq = $fake->control('GET', 'requests')->{lastSeq};
my $nchanges = q1("SELECT count(*) FROM hubsync.changes");
my $h2 = q1("SELECT hubsync.upsert('invoices', 'erp_invoice_id', 'INV-1001',
	'{\"hs_currency\": \"EUR\", \"hs_amount_billed\": \"1500.00\", \"hs_balance_due\": \"1500.00\", \"hs_invoice_status\": \"draft\", \"hs_due_date\": \"2025-10-01\"}')");
is($h2, $h1, 'replay finds the same row');
is(q1("SELECT count(*) FROM hubsync.outbox"), '0', 'replay queues nothing');
sleep 2;
is(scalar @{ $fake->control('GET', "requests?since=$seq")->{requests} }, 0, 'replay sends nothing to HubSpot');
is(q1("SELECT count(*) FROM hubsync.changes"), $nchanges, 'replay adds nothing to the change feed');
is(q1("SELECT count(*) FROM hubspot.invoices WHERE properties->>'erp_invoice_id' = 'INV-1001'"), '1', 'one invoice');

# ---- the billing transaction, origin billing ----
my $sub = q1("INSERT INTO hubspot.subscriptions (hs_name, hs_status, hs_recurring_revenue, hs_recurring_billing_frequency, hs_start_date, hs_currency_code)
	VALUES ('Team', 'active', 100, 'monthly', '2025-01-01', 'EUR') RETURNING hubsync_id");
ok(settled(), 'subscription in HubSpot');
q1("BEGIN;
	SET LOCAL hubsync.origin = 'billing';
	SELECT hubsync.upsert('invoices', 'erp_invoice_id', 'INV-1001', '{\"hs_invoice_status\": \"paid\", \"hs_balance_due\": \"0\"}');
	INSERT INTO hubspot.commerce_payments (hubsync_id, hs_initial_amount, hs_initiated_date, hs_latest_status, hs_currency_code, hs_payment_method_type)
	  VALUES ('00000000-0000-0000-0000-0000000000f1', 1500.00, '2025-09-15 08:00Z', 'succeeded', 'EUR', 'card');
	UPDATE hubspot.subscriptions SET hs_recurring_revenue = 250, hs_name = 'Business' WHERE hubsync_id = '$sub';
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
	  VALUES ('commerce_payments', '00000000-0000-0000-0000-0000000000f1', 'invoices', '$h1'),
	         ('commerce_payments', '00000000-0000-0000-0000-0000000000f1', 'subscriptions', '$sub');
	COMMIT;");
ok(settled(), 'billing transaction pushed');
my $pay = hsid('commerce_payments', '00000000-0000-0000-0000-0000000000f1');
is(hs('invoices', $inv2)->{hs_invoice_status}, 'paid', 'invoice paid in HubSpot');
is(hs('commerce_payments', $pay)->{hs_latest_status}, 'succeeded', 'payment succeeded in HubSpot');
is(hs('subscriptions', hsid('subscriptions', $sub))->{hs_recurring_revenue}, '250', 'subscription upgraded in HubSpot');
my $links = $fake->control('GET', "records/commerce_payments/$pay")->{associations};
is(scalar(@{ $links->{invoices} || [] }) . ' ' . scalar(@{ $links->{subscriptions} || [] }), '1 1',
	'payment associated with invoice and subscription in HubSpot');
is(q1("SELECT string_agg(DISTINCT object_type || ':' || origin, ',' ORDER BY object_type || ':' || origin) FROM hubsync.changes
	WHERE direction = 'out' AND origin = 'billing'"),
	'associations:billing,commerce_payments:billing,invoices:billing,subscriptions:billing', 'origin billing in hubsync.changes');

# ---- postgres-owned revenue property: a HubSpot edit is reverted ----
q1("SELECT hubsync.set_owner('invoices', 'hs_amount_billed', 'postgres')");
$fake->control('POST', "ui/invoices/$inv2", { properties => { hs_amount_billed => '1.00' } });
ok(settled(), 'edit and revert settled');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.outbox"), 'revert pushed');
is(hs('invoices', $inv2)->{hs_amount_billed}, '1500.00', 'HubSpot edit of a postgres-owned amount reverted');
is(q1("SELECT property || ' ' || local_value || ' ' || remote_value FROM hubsync.conflicts WHERE hs_object_id = $inv2"),
	'hs_amount_billed 1500.00 1.00', 'recorded as a conflict');
is(q1("SELECT hs_amount_billed FROM hubspot.invoices WHERE hs_object_id = $inv2"), '1500.00', 'local amount kept');

# ---- merges never double counted ----
my $d1 = $fake->control('POST', 'ui/deals', { properties => { dealname => 'M1', amount => '1000', dealstage => 'closedwon',
	pipeline => 'default', closedate => '2024-03-10T00:00:00.000Z' } })->{id};
my $d2 = $fake->control('POST', 'ui/deals', { properties => { dealname => 'M2', amount => '1000', dealstage => 'closedwon',
	pipeline => 'default', closedate => '2024-03-12T00:00:00.000Z' } })->{id};
ok(settled(), 'deals arrived');
is(q1("SELECT amount FROM hubspot.revenue_by_month WHERE month = '2024-03-01'"), '2000', 'two deals before the merge');
$fake->control('POST', 'ui/deals/merge', { primaryObjectId => "$d1", objectIdToMerge => "$d2" });
ok(settled(), 'merge applied');
is(q1("SELECT count(*) FROM hubsync.merges WHERE object_type = 'deals' AND merged_id IN ($d1, $d2)"), '2', 'lineage kept');
is(q1("SELECT deals || ' ' || amount FROM hubspot.revenue_by_month WHERE month = '2024-03-01'"), '1 1000',
	'the merged deal counts once');

# ---- an app LISTENs and reacts to a failed payment ----
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(['psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'),
	'-c', 'LISTEN hubsync_changes', '-c', 'SELECT pg_sleep(5)', '-c', 'SELECT 1'], \$in, \$out, \$err);
sleep 1;
$fake->control('POST', "ui/commerce_payments/$pay", { properties => { hs_latest_status => 'failed' } });
ok(settled(), 'failed payment applied');
$h->finish;
my ($payload) = $out =~ /Asynchronous notification "hubsync_changes" with payload "(\{.*?"commerce_payments".*?\})" received/;
ok(defined $payload, 'the app heard about the payment') or diag($out);
my $n = decode_json($payload // '{}');
ok((grep { $_ eq 'hs_latest_status' } @{ $n->{changed} || [] }), 'the notification names hs_latest_status');
is($n->{direction}, 'in', 'and says it came from HubSpot');
# the app reacts: it reads the payment and puts the subscription past due
if (q1("SELECT hs_latest_status FROM hubspot.commerce_payments WHERE hubsync_id = '$n->{hubsync_id}'") eq 'failed')
{
	q1("BEGIN; SET LOCAL hubsync.origin = 'dunning';
		UPDATE hubspot.subscriptions s SET hs_status = 'past_due'
		FROM hubspot.associations a
		WHERE a.from_type = 'commerce_payments' AND a.from_hubsync_id = '$n->{hubsync_id}'
		  AND a.to_type = 'subscriptions' AND a.to_hubsync_id = s.hubsync_id; COMMIT;");
}
ok(settled(), 'reaction pushed');
is(hs('subscriptions', hsid('subscriptions', $sub))->{hs_status}, 'past_due', 'the reaction reached HubSpot');

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
$fake->stop;
done_testing();
