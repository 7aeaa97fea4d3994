# Associations both ways through the v4 API: an INSERT into
# hubspot.associations creates the association in HubSpot, a DELETE
# removes it; type ids come from HubSpot's labels endpoint (cached),
# including payment -> invoice (542) and payment -> subscription (393);
# an association to a record not yet in HubSpot waits for its create; a
# type HubSpot refuses fails alone; HubSpot's association changes arrive.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $fake = HubSync::FakeHubSpot->start;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('assoc', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url });
$node->safe_psql('postgres',
	"SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# drained -- records and associations have left
sub drained
{
	return $node->poll_query_until('postgres',
		"SELECT (SELECT count(*) FROM hubsync.outbox) = 0
		    AND (SELECT count(*) FROM hubsync.association_outbox WHERE state <> 'failed') = 0");
}

# assoc_of -- {to id => [type ids]} of a fake record towards a type
sub assoc_of
{
	my ($type, $id, $to) = @_;
	my $rec = $fake->control('GET', "records/$type/$id");
	my %out;
	for my $x (@{ $rec->{associations}{$to} || [] })
	{
		$out{ $x->{id} } = [ sort { $a <=> $b } map { $_->{typeId} // $_ } @{ $x->{types} } ];
	}
	return \%out;
}

# the billing transaction: records and their associations in one commit;
# the associations name records by hubsync_id, as none is in HubSpot yet
# (the payment's push is held back so the queue can be counted)
q1("SELECT hubsync.pause('commerce_payments')");
q1("BEGIN;
	INSERT INTO hubspot.invoices (hubsync_id, hs_currency, hs_amount_billed)
	  VALUES ('00000000-0000-0000-0000-0000000000a1', 'EUR', 100.00);
	INSERT INTO hubspot.subscriptions (hubsync_id, hs_name, hs_status)
	  VALUES ('00000000-0000-0000-0000-0000000000a2', 'Gold', 'active');
	INSERT INTO hubspot.commerce_payments (hubsync_id, hs_initial_amount, hs_initiated_date, hs_latest_status, hs_currency_code)
	  VALUES ('00000000-0000-0000-0000-0000000000a3', 100.00, '2025-07-01 10:00Z', 'succeeded', 'EUR');
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
	  VALUES ('commerce_payments', '00000000-0000-0000-0000-0000000000a3', 'invoices', '00000000-0000-0000-0000-0000000000a1');
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id, type_id)
	  VALUES ('commerce_payments', '00000000-0000-0000-0000-0000000000a3', 'subscriptions', '00000000-0000-0000-0000-0000000000a2', 393);
	COMMIT;");
is(q1("SELECT count(*) FROM hubsync.association_outbox WHERE op = 'create'"), '2', 'two association creates queued');
q1("SELECT hubsync.resume('commerce_payments')");
ok(drained(), 'records and associations left');
my ($inv, $sub, $pay) = map { q1("SELECT hs_object_id FROM hubspot.$_->[0] WHERE hubsync_id = '$_->[1]'") }
	(['invoices', '00000000-0000-0000-0000-0000000000a1'], ['subscriptions', '00000000-0000-0000-0000-0000000000a2'],
	 ['commerce_payments', '00000000-0000-0000-0000-0000000000a3']);
like($pay, qr/^\d+$/, 'payment created in HubSpot');
is_deeply(assoc_of('commerce_payments', $pay, 'invoices')->{$inv}, [542], 'payment -> invoice is type 542 in HubSpot');
ok((grep { $_ == 393 } @{ assoc_of('commerce_payments', $pay, 'subscriptions')->{$sub} || [] }),
	'payment -> subscription is type 393 in HubSpot');
is(q1("SELECT string_agg(from_id || '>' || to_id || ':' || type_id, ',' ORDER BY type_id) FROM hubspot.associations
	WHERE from_type = 'commerce_payments'"), "$pay>$sub:393,$pay>$inv:542", 'mirror rows learnt ids and the type id');
is(q1("SELECT hubsync.association_type('commerce_payments', 'invoices')"), '542', 'labels endpoint cached');
my $labels = grep { $_->{path} =~ m{/crm/v4/associations/commerce_payments/invoices/labels} }
	@{ $fake->control('GET', 'requests')->{requests} };
is($labels, 1, 'labels read once');
is(q1("SELECT count(*) FROM hubsync.changes WHERE object_type = 'associations' AND direction = 'out' AND op = 'insert'"),
	'2', 'association pushes in the change feed');

# an association to a record that cannot reach HubSpot yet waits for it
q1("SELECT hubsync.pause('invoices')");
q1("BEGIN;
	INSERT INTO hubspot.invoices (hubsync_id, hs_currency) VALUES ('00000000-0000-0000-0000-0000000000b1', 'USD');
	INSERT INTO hubspot.associations (from_type, from_id, to_type, to_hubsync_id, type_id)
	  VALUES ('commerce_payments', $pay, 'invoices', '00000000-0000-0000-0000-0000000000b1', 542);
	COMMIT;");
sleep 3;
is(q1("SELECT state || ':' || coalesce(to_id::text, 'none') FROM hubsync.association_outbox"), 'pending:none',
	'association waits while its invoice is not in HubSpot');
is(q1("SELECT count(*) FROM hubsync.association_outbox WHERE last_error IS NOT NULL"), '0', 'waiting is no error');
q1("SELECT hubsync.resume('invoices')");
ok(drained(), 'invoice and then its association left');
my $inv2 = q1("SELECT hs_object_id FROM hubspot.invoices WHERE hubsync_id = '00000000-0000-0000-0000-0000000000b1'");
is_deeply(assoc_of('commerce_payments', $pay, 'invoices')->{$inv2}, [542], 'deferred association created');

# DELETE removes exactly that association in HubSpot
q1("DELETE FROM hubspot.associations WHERE from_type = 'commerce_payments' AND to_type = 'subscriptions'");
ok(drained(), 'delete left');
ok(!(grep { $_ == 393 } @{ assoc_of('commerce_payments', $pay, 'subscriptions')->{$sub} || [] }),
	'payment -> subscription removed in HubSpot');
is_deeply(assoc_of('commerce_payments', $pay, 'invoices')->{$inv}, [542], 'other associations untouched');

# an insert deleted before it left sends nothing
my $seq = $fake->control('GET', 'requests')->{lastSeq};
q1("SELECT hubsync.pause('invoices')");
q1("BEGIN;
	INSERT INTO hubspot.invoices (hubsync_id, hs_currency) VALUES ('00000000-0000-0000-0000-0000000000c1', 'USD');
	INSERT INTO hubspot.associations (from_type, from_id, to_type, to_hubsync_id, type_id)
	  VALUES ('commerce_payments', $pay, 'invoices', '00000000-0000-0000-0000-0000000000c1', 542);
	COMMIT;");
q1("DELETE FROM hubspot.associations WHERE to_hubsync_id = '00000000-0000-0000-0000-0000000000c1'");
is(q1("SELECT count(*) FROM hubsync.association_outbox"), '0', 'create and delete cancel out');
q1("SELECT hubsync.resume('invoices')");
ok(drained(), 'drained');

# a type HubSpot refuses fails alone, with HubSpot's reason; the rest go
q1("BEGIN;
	INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('commerce_payments', $pay, 'subscriptions', $sub, 99999);
	INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('commerce_payments', $pay, 'subscriptions', $sub, 393);
	COMMIT;");
ok(drained(), 'drained with one failure');
like(q1("SELECT state || ' ' || last_status || ' ' || last_error FROM hubsync.association_outbox"),
	qr/^failed 400 .*99999/, 'the bad type failed with HubSpot\'s reason');
ok((grep { $_ == 393 } @{ assoc_of('commerce_payments', $pay, 'subscriptions')->{$sub} || [] }),
	'the good one went through');
# an unknown label is a clear failure too
q1("INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, label)
	VALUES ('commerce_payments', $pay, 'invoices', $inv, 'No such label')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.association_outbox WHERE last_error LIKE '%No such label%' AND state = 'failed'"),
	'unknown label fails with a clear error');
my ($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('nope', 1, 'invoices', 2, 1)");
like($err, qr/unknown object types/, 'an unknown object type is refused');

# HubSpot's side: a rep links the invoice to a contact; it arrives with
# its type and label, and is not pushed back
my $c = $fake->control('POST', 'ui/contacts', { properties => { email => 'payer@example.com' } });
$fake->control('POST', 'ui/associations', { fromObjectType => 'invoices', fromObjectId => $inv,
	toObjectType => 'contacts', toObjectId => $c->{id} });
$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.associations WHERE from_type = 'invoices' AND from_id = $inv AND to_id = $c->{id}"),
	'association made in HubSpot arrived')
  or diag(q1("SELECT subscription_type, state, error, event FROM hubsync.inbox ORDER BY id DESC LIMIT 3"));
is(q1("SELECT count(*) FROM hubsync.association_outbox WHERE from_type = 'invoices'"), '0', 'and is not pushed back');

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
$fake->stop;
done_testing();
