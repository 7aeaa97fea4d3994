# Applying HubSpot's changes: the fake HubSpot's webhook sender delivers
# to the embedded receiver; the pull worker applies creations, property
# changes (newest wins, duplicates and shuffled order), deletions, privacy
# deletions, merges, restores and association changes; echoes of our own
# pushes change nothing; postgres-owned properties are reverted; a failed
# delivery is retried and applied once; LISTEN hears a rep's edit; an
# event that fails is counted in hubsync.status, alerted (inbound_failed)
# and, once its cause is gone, queued again by hubsync.retry_inbox().
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake, $port) = HubSync::Node::with_webhooks('apply',
	fake_config => { webhookPropertyChangeOnCreate => JSON::PP::true });
sleep 1;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# settled -- the fake delivered everything and the inbox is applied
sub settled { return HubSync::Node::webhooks_applied($node, $fake); }

sub counter { return q1("SELECT value FROM hubsync.webhook_stats WHERE counter = '$_[0]'"); }

# ---- creation: a rep creates a deal ----
my $deal = $fake->control('POST', 'ui/deals', { properties => {
	dealname => 'Big one', amount => '1500.50', dealstage => 'appointmentscheduled',
	closedate => '2025-06-30T12:00:00.000Z', pipeline => 'default' } });
my $id = $deal->{id};
ok(settled(), 'creation delivered and applied');
is(q1("SELECT dealname || '|' || amount || '|' || dealstage || '|' || (closedate AT TIME ZONE 'UTC') FROM hubspot.deals WHERE hs_object_id = $id"),
	'Big one|1500.50|appointmentscheduled|2025-06-30 12:00:00', 'deal row inserted with typed values');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'applying enqueued no push');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'in' AND origin = 'hubspot' AND hs_object_id = $id AND op = 'insert'"),
	1, 'insert recorded in the change feed');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events');
# the change feed holds what changed: the read record's unset properties
# (null on the wire) are not changes, nor is a re-read that changed nothing
ok(q1("SELECT properties ?& ARRAY['dealname', 'amount', 'dealstage', 'closedate', 'pipeline'] FROM hubsync.changes WHERE hs_object_id = $id AND op = 'insert'") eq 't',
	'the insert records the values the rep set');
is(q1("SELECT count(*) FROM hubsync.changes c, jsonb_each_text(c.properties) p WHERE c.direction = 'in' AND c.hs_object_id = $id AND coalesce(p.value, '') = ''"),
	0, 'no empty property recorded as a change');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'in' AND hs_object_id = $id AND properties = '{}'"),
	0, 'no change recorded without a changed property');

# ---- LISTEN: a rep changes the deal stage ----
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(['psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'),
	'-c', 'LISTEN hubsync_changes', '-c', 'SELECT pg_sleep(4)', '-c', 'SELECT 1'],
	\$in, \$out, \$err);
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'closedwon' } });
ok(settled(), 'stage change applied');
$h->finish;
is(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $id"), 'closedwon', 'deal stage updated');
like($out, qr/Asynchronous notification "hubsync_changes" with payload "\{[^"]*\\?"?.*closedwon|dealstage/s,
	'listener heard the change');
like($out, qr/"op": "update"/, 'notification names the operation');
like($out, qr/"hs_object_id": $id/, 'notification names the record');
like($out, qr/"direction": "in"/, 'notification says it came from HubSpot');

# ---- value conversion: unconvertible number kept in jsonb ----
$fake->control('POST', "ui/deals/$id", { properties => { amount => '', description => 'call' } });
ok(settled(), 'empty amount applied');
is(q1("SELECT coalesce(amount::text, 'NULL') || '|' || (properties->>'description') FROM hubspot.deals WHERE hs_object_id = $id"),
	'NULL|call', '"" becomes NULL; an unmapped property lands in properties');
my $hid = q1("SELECT hubsync_id FROM hubspot.deals WHERE hs_object_id = $id");
my $v = int(q1("SELECT (extract(epoch FROM now()) * 1000)::bigint")) + 60000;
sub send_event
{
	my ($events) = @_;
	my $body = JSON::PP->new->canonical->encode($events);
	my $ts = int(q1("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"));
	my $sig = q1("SELECT hubsync._webhook_signature(3, 'hubsync-test-secret', 'POST', "
		. "'http://127.0.0.1:$port/hubspot/webhooks', \$b\$$body\$b\$, '$ts')");
	return q1("SELECT hubsync.ingest_webhook('POST', 'http://127.0.0.1:$port/hubspot/webhooks', \$b\$$body\$b\$, '$sig', '$ts')");
}
my $ev = { eventId => 900001, subscriptionId => 5, portalId => 62515, appId => 54321,
	subscriptionType => 'deal.propertyChange', attemptNumber => 0, objectId => int($id),
	propertyName => 'amount', changeSource => 'CRM_UI', sourceId => 'userId:1' };
send_event([{ %$ev, occurredAt => $v, propertyValue => 'lots' }]);
ok(settled(), 'bad number applied');
is(q1("SELECT coalesce(amount::text, 'NULL') || '|' || (properties->>'amount') FROM hubspot.deals WHERE hs_object_id = $id"),
	'NULL|lots', 'a value that cannot convert is kept in properties');

# ---- newest wins: shuffled order and duplicates converge ----
my @evs;
for my $i (1 .. 20)
{
	push @evs, { %$ev, eventId => 900100 + $i, occurredAt => $v + $i * 10, propertyValue => "$i.00" };
}
my @shuffled = sort { ($a->{eventId} * 7919) % 23 <=> ($b->{eventId} * 7919) % 23 } (@evs, @evs[3, 7, 19]);
send_event([@shuffled[0 .. 9]]);
ok(settled(), 'first half applied');
send_event([@shuffled[10 .. $#shuffled]]);
send_event([@shuffled[0 .. 5]]);
ok(settled(), 'second half and duplicates applied');
is(q1("SELECT amount FROM hubspot.deals WHERE hs_object_id = $id"), '20.00', 'newest value wins');
is(q1("SELECT (versions->>'amount')::bigint - $v FROM hubsync.sync_state WHERE hubsync_id = '$hid'"), 200,
	'per-property version is the newest occurredAt');
send_event([{ %$ev, eventId => 900999, occurredAt => $v + 5, propertyValue => '0.01' }]);
ok(settled(), 'old event applied');
is(q1("SELECT amount FROM hubspot.deals WHERE hs_object_id = $id"), '20.00', 'an older event never overwrites');

# ---- the change feed records only what changed (set-based path) ----
my $before = q1("SELECT max(id) FROM hubsync.changes");
send_event([{ %$ev, eventId => 901001, occurredAt => $v + 300, propertyValue => '20.0' },
	{ %$ev, eventId => 901002, occurredAt => $v + 300, propertyName => 'description', propertyValue => 'call back' },
	{ %$ev, eventId => 901003, occurredAt => $v + 300, propertyName => 'dealtype', propertyValue => '' }]);
ok(settled(), 'one equal, one new and one empty value applied');
is(q1("SELECT string_agg(properties::text, ' ') FROM hubsync.changes WHERE id > $before AND hs_object_id = $id"),
	'{"description": "call back"}', 'only the value that changed is in the change feed');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE (event->>'eventId')::bigint BETWEEN 901001 AND 901003 AND state = 'applied'"),
	3, 'all three events applied');
send_event([{ %$ev, eventId => 901004, occurredAt => $v + 400, propertyName => 'description', propertyValue => 'call back' }]);
ok(settled(), 'a repeated value applied');
is(q1("SELECT count(*) FROM hubsync.changes WHERE id > $before AND hs_object_id = $id"), 1,
	'a value equal to the mirror\'s is no change');

# ---- two values at the same instant: HubSpot is asked which is current ----
# (at the instant of HubSpot's last change, so a read cannot be older)
my $rec = $fake->control('GET', "records/deals/$id");
my $stage = $rec->{properties}{dealstage};
my $at = q1("SELECT (extract(epoch FROM '$rec->{updatedAt}'::timestamptz) * 1000)::bigint");
send_event([{ %$ev, eventId => 901101, occurredAt => int($at), propertyName => 'dealstage', propertyValue => 'twin A' },
	{ %$ev, eventId => 901102, occurredAt => int($at), propertyName => 'dealstage', propertyValue => 'twin B' }]);
ok(settled(), 'two events with one timestamp applied');
like(q1("SELECT string_agg(state || ':' || coalesce(error, ''), ',' ORDER BY id) FROM hubsync.inbox "
		. "WHERE (event->>'eventId')::bigint IN (901101, 901102)"),
	qr/ambiguous: another value has the same timestamp/, 'the second value of the same instant is called ambiguous');
is(q1("SELECT state FROM hubsync.inbox WHERE event->>'changeSource' = 'HUBSYNC_REFRESH' AND object_id = $id"),
	'applied', 'the record was read again from HubSpot');
is(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $id"), $stage,
	'the mirror holds what HubSpot holds, not whichever twin came last');

# ---- ownership: postgres owns dealname; a rep edit is reverted ----
q1("SELECT hubsync.set_owner('deals', 'dealname', 'postgres')");
$fake->control('POST', "ui/deals/$id", { properties => { dealname => 'Renamed by rep' } });
ok(settled(), 'rep edit of a postgres-owned property applied');
is(q1("SELECT dealname FROM hubspot.deals WHERE hs_object_id = $id"), 'Big one', 'local value kept');
is(q1("SELECT property || '|' || local_value || '|' || remote_value FROM hubsync.conflicts WHERE hs_object_id = $id"),
	'dealname|Big one|Renamed by rep', 'conflict recorded');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.outbox"), 'revert pushed');
ok($node->poll_query_until('postgres', 'SELECT true') && wait_fake_value($id, 'dealname', 'Big one'),
	'HubSpot holds our value again');
sub wait_fake_value
{
	my ($oid, $prop, $want) = @_;
	for (1 .. 100)
	{
		my $r = $fake->control('GET', "records/deals/$oid");
		return 1 if ($r->{properties}{$prop} // '') eq $want;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
ok(settled(), 'echo of the revert applied');
is(counter('events_reverted'), 1, 'revert counted once');
# the echo of our revert is recognised as ours: an echo when it overtakes
# the push's bookkeeping, else stale (the push recorded the write's time)
ok(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $id AND event ->> 'propertyName' = 'dealname' "
	. "AND event ->> 'propertyValue' = 'Big one' AND event ->> 'changeSource' IN ('API', 'INTEGRATION') "
	. "AND (error LIKE 'echo of our own push%' OR error LIKE 'stale%')") >= 1,
	'echo of our push recognised');
is(q1("SELECT dealname FROM hubspot.deals WHERE hs_object_id = $id"), 'Big one', 'no ping-pong');

# ---- echo of an app change: INSERT locally, pushed, echoes back ----
q1("INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline) VALUES ('From app', 99, 'appointmentscheduled', 'default')");
ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.deals WHERE dealname = 'From app'"),
	'app insert pushed');
ok(settled(), 'echoes applied');
is(q1("SELECT count(*) FROM hubspot.deals WHERE dealname = 'From app'"), 1, 'echoed creation made no second row');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'echo enqueued nothing');

# ---- association change ----
my $contact = $fake->control('POST', 'ui/contacts', { properties => { email => 'ann@example.com', firstname => 'Ann' } });
my $cid = $contact->{id};
$fake->control('POST', 'ui/associations', { fromObjectType => 'deals', fromObjectId => $id,
	toObjectType => 'contacts', toObjectId => $cid });
ok(settled(), 'association applied');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'deals' AND from_id = $id AND to_type = 'contacts' AND to_id = $cid"),
	1, 'deal -> contact association mirrored');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $cid AND to_type = 'deals' AND to_id = $id"),
	1, 'contact -> deal association mirrored');
$fake->control('POST', 'ui/associations', { fromObjectType => 'deals', fromObjectId => $id,
	toObjectType => 'contacts', toObjectId => $cid, remove => JSON::PP::true });
ok(settled(), 'association removal applied');
is(q1("SELECT count(*) FROM hubspot.associations WHERE to_id = $cid OR from_id = $cid"), 0, 'association removed');

# ---- merge ----
my $c2 = $fake->control('POST', 'ui/contacts', { properties => { email => 'bob@example.com', firstname => 'Bob' } })->{id};
ok(settled(), 'second contact applied');
my $ann_hid = q1("SELECT hubsync_id FROM hubspot.contacts WHERE hs_object_id = $cid");
my $merged = $fake->control('POST', 'ui/contacts/merge', { primaryObjectId => $cid, objectIdToMerge => $c2 });
ok(settled(), 'merge applied');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IN ($cid, $c2)"), 0, 'merged-away rows gone');
is(q1("SELECT hubsync_id FROM hubspot.contacts WHERE hs_object_id = $merged->{id}"), $ann_hid,
	'survivor kept the primary row');
is(q1("SELECT count(*) FROM hubsync.merges WHERE object_type = 'contacts' AND survivor_id = $merged->{id}"), 2,
	'lineage recorded');

# ---- deletion and restore ----
# (of a deal with no hand-made events: those above are dated a minute
# ahead, and a deletion older than a record's last known change is
# skipped as stale, which 088_webhook_replay.pl tests)
my $gone = $fake->control('POST', 'ui/deals', { properties => { dealname => 'Short-lived' } })->{id};
ok(settled(), 'deal to delete mirrored');
$fake->control('POST', "ui/deals/$gone/delete", {});
ok(settled(), 'deletion applied');
is(q1("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = $gone"), 0, 'deleted deal removed');
is(q1("SELECT count(*) FROM hubsync.changes WHERE object_type = 'deals' AND hs_object_id = $gone AND op = 'delete'"), 1, 'deletion in the change feed');
$fake->control('POST', "ui/deals/$gone/restore", {});
ok(settled(), 'restore applied');
is(q1("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = $gone"), 1, 'restored deal back');

# ---- privacy deletion ----
my $mid = $merged->{id};
$fake->control('POST', "ui/contacts/$mid/gdpr-delete", {});
ok(settled(), 'privacy deletion applied');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $mid"), 0, 'contact erased');
is(q1("SELECT count(*) FROM hubsync.changes WHERE object_type = 'contacts' AND (hs_object_id = $mid OR hubsync_id = '$ann_hid')"),
	0, 'contact\'s change feed erased');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $mid AND subscription_type LIKE 'contact.%' AND (event::text LIKE '%ann@%' OR property_value LIKE '%ann@%')"),
	0, 'contact\'s personal data erased from the inbox');
# an event of that contact still pending when the deletion is applied
# keeps no value either (event and typed column)
my $carol = $fake->control('POST', 'ui/contacts', { properties => { email => 'carol@example.com', firstname => 'Carol' } });
ok(settled(), 'second contact created');
send_event([{ eventId => 902001, subscriptionId => 11, portalId => 62515, appId => 54321,
		subscriptionType => 'contact.privacyDeletion', objectId => int($carol->{id}), occurredAt => $v + 1000,
		changeSource => 'GDPR', sourceId => 'userId:1' },
	{ eventId => 902002, subscriptionId => 12, portalId => 62515, appId => 54321,
		subscriptionType => 'contact.propertyChange', objectId => int($carol->{id}), occurredAt => $v + 1001,
		propertyName => 'email', propertyValue => 'carol.new@example.com', changeSource => 'CRM_UI', sourceId => 'userId:1' }]);
ok(settled(), 'privacy deletion with a later pending change applied');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE event::text LIKE '%carol%' OR property_value LIKE '%carol%'"),
	0, 'no trace of the contact in the inbox, typed columns included');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $carol->{id}"), 0, 'second contact erased');

# ---- unknown subscription type: skipped and counted ----
send_event([{ eventId => 1, subscriptionId => 9, portalId => 62515, occurredAt => $v,
	subscriptionType => 'conversation.newMessage', objectId => 5 }]);
ok(settled(), 'unknown type processed');
is(q1("SELECT state FROM hubsync.inbox WHERE subscription_type = 'conversation.newMessage'"), 'skipped', 'unknown type skipped');
is(counter('events_unknown_type'), 1, 'unknown type counted');

# ---- a failed delivery (receiver stopped) is retried and applied once ----
$node->append_conf('postgresql.conf', "hubsync.webhook_port = 0\n");
$node->reload;
sleep 2;
my $d2 = $fake->control('POST', 'ui/deals', { properties => { dealname => 'While down', amount => '5' } });
my $since = 0;
my $failed = 0;
for (1 .. 50)
{
	my $dl = $fake->control('GET', 'webhooks/deliveries');
	$failed = grep { !defined $_->{status} } @{ $dl->{deliveries} };
	last if $failed;
	select(undef, undef, undef, 0.1);
}
ok($failed, 'delivery failed while the receiver was stopped');
$node->append_conf('postgresql.conf', "hubsync.webhook_port = $port\n");
$node->reload;
ok(settled(), 'retried delivery applied');
is(q1("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = $d2->{id}"), 1, 'record from the retried delivery applied once');

# ---- a failed event: counted, alerted, retried once its cause is gone ----
# a trigger of the application's refuses one value: the event fails
q1(q{CREATE FUNCTION public.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.dealstage = 'decisionmakerboughtin' THEN
		RAISE EXCEPTION 'refused by the application';
	END IF;
	RETURN NEW;
END $$});
q1("CREATE TRIGGER refuse_poison BEFORE UPDATE ON hubspot.deals FOR EACH ROW EXECUTE FUNCTION public.refuse_poison()");
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'decisionmakerboughtin' } });
ok(settled(), 'poison event processed');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed' AND error LIKE '%refused by the application%'"), 1,
	'the event is kept as failed with its error');
isnt(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $id"), 'decisionmakerboughtin', 'not applied');
is(q1("SELECT inbound_failed FROM hubsync.status WHERE object_type = 'deals'"), 1, 'hubsync.status counts it');
is(q1("SELECT inbound_failed FROM hubsync.status WHERE object_type = 'contacts'"), 0, 'for its type only');
q1("SELECT hubsync._check_alerts()");
is(q1("SELECT payload ->> 'failed_events' FROM hubsync.alerts WHERE alert = 'inbound_failed' AND key = 'deals'"), 1,
	'alert inbound_failed for the type, with the count');
unlike(q1("SELECT payload::text FROM hubsync.alerts WHERE alert = 'inbound_failed'"), qr/decisionmakerboughtin|refused by the app/,
	'the alert carries neither HubSpot\'s value nor the error');
# owner only
q1("CREATE ROLE inbox_app LOGIN");
my ($rr, $ro, $re) = $node->psql('postgres', "SET ROLE inbox_app; SELECT hubsync.retry_inbox()");
like($re, qr/permission denied to retry inbound events/, 'retry_inbox refused to another role');
($rr, $ro, $re) = $node->psql('postgres', "SELECT hubsync.retry_inbox(object_type => 'nosuch')");
like($re, qr/object type "nosuch" is not tracked/, 'retry_inbox: unknown type refused');
is(q1("SELECT hubsync.retry_inbox(object_type => 'contacts')"), 0, 'nothing of another type retried');
is(q1("SELECT hubsync.retry_inbox(event_id => -1)"), 0, 'nothing for an unknown event');
q1("DROP TRIGGER refuse_poison ON hubspot.deals");
my $failed_ev = q1("SELECT id FROM hubsync.inbox WHERE state = 'failed'");
is(q1("SELECT hubsync.retry_inbox(event_id => $failed_ev)"), 1, 'retry_inbox queues the failed event again');
ok($node->poll_query_until('postgres', "SELECT state = 'applied' FROM hubsync.inbox WHERE id = $failed_ev"),
	'the retried event is applied (the pull worker woken)');
is(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $id"), 'decisionmakerboughtin', 'its value reached the row');
is(q1("SELECT inbound_failed FROM hubsync.status WHERE object_type = 'deals'"), 0, 'no longer counted');
is(q1("SELECT hubsync.retry_inbox()"), 0, 'nothing left to retry');

is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events at the end');
diag(q1("SELECT string_agg(counter || '=' || value, ' ') FROM hubsync.webhook_stats"));
$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
$fake->stop;
done_testing();
