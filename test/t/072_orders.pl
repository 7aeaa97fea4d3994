# HubSpot-defined object types outside the default set, through the fake
# HubSpot: track_object('orders') builds hubspot.orders from the
# properties API (the custom-object schemas API does not serve orders);
# an order written locally reaches HubSpot with its associations to a
# deal, a contact and a line item; an order a rep creates in HubSpot, with
# its associations, arrives; notes are tracked the same way; a name that
# is neither HubSpot-defined nor a custom object is refused with a hint.
# An existing hubsync_id property that is not unique is refused by
# track_object and reported by hubsync.check(), and the push worker
# dead-letters that type's changes with the reason instead of sending
# upserts HubSpot would refuse.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_webhooks('orders',
	fake_config => { webhookPropertyChangeOnCreate => JSON::PP::true });

sub q1 { return $node->safe_psql('postgres', $_[0]); }
my $auth = { Authorization => 'Bearer test-token' };
sub api { my ($m, $p, $b) = @_; return $fake->request($m, $p, $b, $auth); }

# settled -- pushes and associations left, HubSpot's news applied
sub settled { return HubSync::Node::all_settled($node, $fake); }
sub hsid { my ($t, $hid) = @_; return q1("SELECT hs_object_id FROM hubspot.$t WHERE hubsync_id = '$hid'"); }

# requests_to -- how many logged requests matched a path pattern
sub requests_to
{
	my ($re, $since) = @_;
	return scalar grep { $_->{path} =~ $re } @{ $fake->control('GET', 'requests?since=' . ($since // 0))->{requests} };
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

# ---- orders: the table comes from the properties API ----
my ($st) = api('GET', '/crm/v3/schemas/orders');
is($st, 404, 'the fake, like HubSpot, has no custom-object schema for orders');
my $seq = $fake->control('GET', 'requests')->{lastSeq};
is(q1("SELECT hubsync.track_object('orders')"), 'hubspot.orders', 'track_object(orders) made a table');
is(q1("SELECT object_type_id || ' ' || api_name || ' ' || coalesce(webhook_prefix, 'object.*') || ' ' || last_modified_property
	FROM hubsync.object_types WHERE object_type = 'orders'"), '0-123 orders object.* hs_lastmodifieddate',
	'object_types row for orders');
is(q1("SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attname)
	FROM pg_attribute WHERE attrelid = 'hubspot.orders'::regclass
	  AND attname IN ('hs_order_name', 'hs_currency_code', 'hs_total_price', 'hs_fulfillment_status')"),
	'hs_currency_code:text,hs_fulfillment_status:text,hs_order_name:text,hs_total_price:numeric',
	'typed columns from the order properties');
is(q1("SELECT count(*) FROM pg_attribute WHERE attrelid = 'hubspot.orders'::regclass
	AND attname IN ('hs_object_id_1', 'hs_lastmodifieddate', 'hs_createdate', 'hs_merged_object_ids')"), '0',
	'read-only system properties get no column');
is(requests_to(qr{/schemas}, $seq), 0, 'the custom-object schemas API was not asked');
ok(requests_to(qr{/properties/orders$}) >= 1, 'the properties API was');
is(q1("SELECT hubsync.track_object('0-123')"), 'hubspot.orders', 'tracking again by objectTypeId changes nothing');

# ---- an order written locally, with its associations ----
q1("BEGIN;
	INSERT INTO hubspot.contacts (hubsync_id, email) VALUES ('00000000-0000-0000-0000-0000000000c1', 'buyer\@example.com');
	INSERT INTO hubspot.deals (hubsync_id, dealname, amount) VALUES ('00000000-0000-0000-0000-0000000000d1', 'Camping', 129.90);
	INSERT INTO hubspot.line_items (hubsync_id, name, quantity, price) VALUES ('00000000-0000-0000-0000-0000000000e1', 'Tent', 1, 129.90);
	INSERT INTO hubspot.orders (hubsync_id, hs_order_name, hs_currency_code, hs_total_price, hs_fulfillment_status)
	  VALUES ('00000000-0000-0000-0000-0000000000f1', 'Camping supplies', 'USD', 129.90, 'Packing');
	INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id) VALUES
	  ('orders', '00000000-0000-0000-0000-0000000000f1', 'deals', '00000000-0000-0000-0000-0000000000d1'),
	  ('orders', '00000000-0000-0000-0000-0000000000f1', 'contacts', '00000000-0000-0000-0000-0000000000c1'),
	  ('orders', '00000000-0000-0000-0000-0000000000f1', 'line_items', '00000000-0000-0000-0000-0000000000e1');
	COMMIT;");
ok(settled(), 'order and its associations pushed')
  or diag(q1("SELECT string_agg(category || ': ' || message, E'\n') FROM hubsync.dead_letters"));
my $ord = hsid('orders', '00000000-0000-0000-0000-0000000000f1');
like($ord, qr/^\d+$/, 'the order is in HubSpot');
my $p = $fake->control('GET', "records/orders/$ord")->{properties};
is(join('|', map { $p->{$_} // '' } qw(hs_order_name hs_currency_code hs_total_price hs_fulfillment_status)),
	'Camping supplies|USD|129.90|Packing', 'order properties sent');
my ($deal, $ct, $li) = (hsid('deals', '00000000-0000-0000-0000-0000000000d1'),
	hsid('contacts', '00000000-0000-0000-0000-0000000000c1'), hsid('line_items', '00000000-0000-0000-0000-0000000000e1'));
is_deeply(assoc_of('orders', $ord, 'deals')->{$deal}, [512], 'order -> deal association in HubSpot (512)');
is_deeply(assoc_of('orders', $ord, 'contacts')->{$ct}, [507], 'order -> contact association in HubSpot (507)');
is_deeply(assoc_of('orders', $ord, 'line_items')->{$li}, [513], 'order -> line item association in HubSpot');
is(q1("SELECT count(*) FROM hubsync.association_outbox"), '0', 'no association left behind');

# an update pushes only the change
q1("UPDATE hubspot.orders SET hs_fulfillment_status = 'Shipped' WHERE hubsync_id = '00000000-0000-0000-0000-0000000000f1'");
ok(settled(), 'update pushed');
is($fake->control('GET', "records/orders/$ord")->{properties}{hs_fulfillment_status}, 'Shipped', 'fulfilment status updated in HubSpot');

# ---- an order a rep creates in HubSpot, with associations ----
my $o2 = $fake->control('POST', 'ui/orders', { properties => { hs_order_name => 'Webshop 1002',
	hs_currency_code => 'EUR', hs_total_price => '49.50' },
	associations => [ { to => { id => "$deal" }, types => [ { associationCategory => 'HUBSPOT_DEFINED', associationTypeId => 512 } ] },
		{ to => { id => "$ct" }, types => [ { associationCategory => 'HUBSPOT_DEFINED', associationTypeId => 507 } ] } ] })->{id};
like($o2, qr/^\d+$/, 'order created in the fake');
ok(settled(), 'HubSpot news applied');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.orders WHERE hs_object_id = $o2 AND hs_order_name = 'Webshop 1002' AND hs_total_price = 49.50"),
	'order created in HubSpot arrived')
  or diag(q1("SELECT subscription_type, state, error FROM hubsync.inbox ORDER BY id DESC LIMIT 5"));
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM hubspot.associations WHERE from_type = 'orders' AND from_id = $o2
	   AND ((to_type = 'deals' AND to_id = $deal) OR (to_type = 'contacts' AND to_id = $ct))"),
	'its associations made at creation arrived too')
  or diag(q1("SELECT string_agg(from_type || from_id || '>' || to_type || to_id, ', ') FROM hubspot.associations"));
# a rep links it to a line item later
$fake->control('POST', 'ui/associations', { fromObjectType => 'orders', fromObjectId => $o2,
	toObjectType => 'line_items', toObjectId => $li });
$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 1 FROM hubspot.associations WHERE from_type = 'orders' AND from_id = $o2 AND to_type = 'line_items' AND to_id = $li"),
	'association of the HubSpot order arrived')
  or diag(q1("SELECT subscription_type, state, error, event FROM hubsync.inbox ORDER BY id DESC LIMIT 3"));
is(q1("SELECT count(*) FROM hubsync.association_outbox WHERE from_type = 'orders' OR to_type = 'orders'"), '0',
	'and is not pushed back');

# ---- engagements: notes ----
is(q1("SELECT hubsync.track_object('notes')"), 'hubspot.notes', 'track_object(notes) made a table');
is(q1("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'hubspot.notes'::regclass AND attname = 'hs_timestamp'"),
	'timestamp with time zone', 'note timestamp is timestamptz');
q1("INSERT INTO hubspot.notes (hubsync_id, hs_timestamp, hs_note_body)
	VALUES ('00000000-0000-0000-0000-0000000000a1', '2026-12-01 10:00Z', 'Called about the tent')");
ok(settled(), 'note pushed');
my $note = hsid('notes', '00000000-0000-0000-0000-0000000000a1');
is($fake->control('GET', "records/notes/$note")->{properties}{hs_note_body}, 'Called about the tent', 'note in HubSpot');

# ---- a name that is neither HubSpot-defined nor a custom object ----
my ($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.track_object('widgets')", extra_params => ['-v', 'VERBOSITY=verbose']);
like($e, qr/HubSpot has no custom object "widgets"/, 'unknown name: clear error');
like($e, qr/HINT:.*schemas/s, 'with a hint');
like($e, qr/DETAIL:.*orders/s, 'naming the HubSpot-defined types it knows');
($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.track_object('Bad Name')");
like($e, qr/invalid HubSpot object type.*HINT:.*orders/s, 'malformed name: error with a hint');

# ---- a hubsync_id property that is not unique ----
($st) = api('POST', '/crm/v3/properties/carts', { name => 'hubsync_id', label => 'hubsync id (by hand)',
	type => 'string', fieldType => 'text', groupName => 'cartinformation', hasUniqueValue => JSON::PP::false });
is($st, 201, 'a non-unique hubsync_id property made by hand on carts');
($r, $o, $e) = $node->psql('postgres', "SELECT hubsync.track_object('carts')", extra_params => ['-v', 'VERBOSITY=verbose']);
like($e, qr/55000.*hubsync_id of carts is not unique/s, 'track_object refuses it (object_not_in_prerequisite_state)');
like($e, qr/DETAIL:.*carts \(0-142\).*hasUniqueValue false/s, 'detail names the object type');
like($e, qr/HINT:.*delete \(or rename\) the property hubsync_id of carts/is, 'hint says what to do');
is(q1("SELECT count(*) FROM hubsync.object_types WHERE object_type = 'carts'") . q1("SELECT to_regclass('hubspot.carts') IS NULL"),
	'0t', 'nothing was tracked');

# on a type already mirrored: check() says so, the worker dead-letters
($st) = api('POST', '/crm/v3/properties/tickets', { name => 'hubsync_id', label => 'hubsync id (by hand)',
	type => 'string', fieldType => 'text', groupName => 'ticketinformation', hasUniqueValue => JSON::PP::false });
is($st, 201, 'a non-unique hubsync_id property made by hand on tickets');
my $chk = q1("SELECT ok || '|' || detail || '|' || hint FROM hubsync.check() WHERE item = 'property tickets.hubsync_id'");
like($chk, qr/^false\|present but not unique.*\|Delete \(or rename\) the property hubsync_id of tickets/, 'check() reports it with a hint');
my $upserts_before = requests_to(qr{/objects/tickets/batch/upsert});
q1("INSERT INTO hubspot.tickets (hubsync_id, subject) VALUES ('00000000-0000-0000-0000-0000000000b1', 'Tent pole broken')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '00000000-0000-0000-0000-0000000000b1'"),
	'the ticket is dead-lettered');
like(q1("SELECT category || '|' || message FROM hubsync.dead_letters WHERE hubsync_id = '00000000-0000-0000-0000-0000000000b1'"),
	qr/^HUBSYNC_ID_NOT_UNIQUE\|the HubSpot property hubsync_id of tickets is not unique/, 'with the reason');
is(requests_to(qr{/objects/tickets/batch/upsert}), $upserts_before, 'no upsert was sent for it');
is(q1("SELECT count(*) FROM hubsync.alerts WHERE alert = 'dead_letter' AND key = 'tickets'"), '1', 'a dead_letter alert was raised');
is(q1("SELECT count(*) FROM hubsync.outbox"), '0', 'nothing is left retrying');

$node->stop('fast');
$fake->stop;
done_testing();
