# User BEFORE triggers that change other columns of the very row hubsync
# is applying: a rep moves a deal to closedwon in HubSpot, and a BEFORE
# UPDATE trigger on hubspot.deals sets NEW.dealtype (a typed column) and
# hs_priority (kept in the properties jsonb).  Those columns reach HubSpot
# as the trigger's change (origin 'trigger'); HubSpot's own change is not
# pushed back, and the record ends synced.  The same when the change
# comes by webhook (set-based and per-event apply), by polling, when a
# record created in HubSpot is inserted (a BEFORE INSERT trigger filling a
# column, webhook and polling), and when the push worker writes back
# hs_object_id.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;
use JSON::PP;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($node, $fake) = HubSync::Node::with_fake('beforetrig',
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.batch_linger' => '20ms' });
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks",
	webhookPropertyChangeOnCreate => JSON::PP::true);
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook worker runs');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# settled -- everything sent both ways and applied
sub settled
{
	for (1 .. 5)
	{
		return 0 unless $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hubsync.outbox");
		my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
		return 0 unless $f->{done};
		return 0 unless $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
		return 1 if q1("SELECT count(*) FROM hubsync.outbox") == 0;
	}
	return 0;
}

# writes_since -- the batch write requests of a type the fake saw after seq
sub writes_since
{
	my ($type, $seq) = @_;
	return scalar grep {
		$_->{method} eq 'POST' && $_->{path} =~ m{/crm/v3/objects/$type/batch/(create|update|upsert|archive)$}
	} @{ $fake->control('GET', "requests?since=$seq")->{requests} };
}

# pushed_since -- "origin:prop+prop" of each change hubsync sent for a type after change id
sub pushed_since
{
	my ($type, $change) = @_;
	return q1("SELECT coalesce(string_agg(origin || ':' || (SELECT string_agg(k, '+' ORDER BY k)
		FROM jsonb_object_keys(properties) k), ',' ORDER BY id), '')
		FROM hubsync.changes WHERE id > $change AND direction = 'out' AND object_type = '$type'");
}

sub last_change { return q1("SELECT coalesce(max(id), 0) FROM hubsync.changes"); }

sub status_of
{
	my ($type, $hsid) = @_;
	return q1("SELECT r.status FROM hubsync.record_status r JOIN hubspot.$type t USING (hubsync_id)
		WHERE t.hs_object_id = $hsid");
}

# ---- records made by the app, pushed ----
q1("INSERT INTO hubspot.deals (dealname, dealstage, pipeline, amount) VALUES
	('Hooked', 'appointmentscheduled', 'default', 100),
	('Polled', 'appointmentscheduled', 'default', 100)");
ok(settled(), 'deals pushed');
my $deal = q1("SELECT hs_object_id FROM hubspot.deals WHERE dealname = 'Hooked'");
my $deal2 = q1("SELECT hs_object_id FROM hubspot.deals WHERE dealname = 'Polled'");
ok($deal && $deal2, 'deals have HubSpot ids');

# ---- the application's BEFORE triggers ----
q1(q{
CREATE FUNCTION deal_won() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.dealstage = 'closedwon' AND OLD.dealstage IS DISTINCT FROM 'closedwon' THEN
		NEW.dealtype := 'newbusiness';
		NEW.properties := NEW.properties || '{"hs_priority": "high"}';
	END IF;
	IF NEW.amount IS DISTINCT FROM OLD.amount THEN
		NEW.properties := NEW.properties || jsonb_build_object('description', 'amount now ' || NEW.amount);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER deal_won BEFORE UPDATE ON hubspot.deals FOR EACH ROW EXECUTE FUNCTION deal_won();
CREATE FUNCTION contact_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.jobtitle := coalesce(NEW.jobtitle, 'Filled locally');
	RETURN NEW;
END $$;
CREATE TRIGGER contact_new BEFORE INSERT ON hubspot.contacts FOR EACH ROW EXECUTE FUNCTION contact_new();
CREATE FUNCTION company_linked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.city := 'Linked on write-back';
	RETURN NEW;
END $$;
CREATE TRIGGER company_linked BEFORE UPDATE OF hs_object_id ON hubspot.companies FOR EACH ROW
	WHEN (OLD.hs_object_id IS NULL AND NEW.hs_object_id IS NOT NULL)
	EXECUTE FUNCTION company_linked();
});

# ---- (a) a rep moves the deal in HubSpot: webhook, set-based apply ----
my $seq = $fake->control('GET', 'requests')->{lastSeq};
my $change0 = last_change();
$fake->control('POST', "ui/deals/$deal", { properties => { dealstage => 'closedwon' } });
ok(settled(), 'webhook: stage change applied, trigger columns sent');
is(q1("SELECT dealstage || ' ' || dealtype || ' ' || (properties ->> 'hs_priority') FROM hubspot.deals WHERE hs_object_id = $deal"),
	'closedwon newbusiness high', 'webhook: the stage is applied and the BEFORE trigger set its columns');
my $rec = $fake->control('GET', "records/deals/$deal")->{properties};
is($rec->{dealtype}, 'newbusiness', "webhook: the BEFORE trigger's typed column reached HubSpot");
is($rec->{hs_priority}, 'high', "webhook: the BEFORE trigger's jsonb property reached HubSpot");
is($rec->{dealstage}, 'closedwon', "webhook: the rep's stage stays");
is(pushed_since('deals', $change0), 'trigger:dealtype+hs_priority',
	"webhook: only the trigger's columns were pushed, HubSpot's stage not echoed");
is(writes_since('deals', $seq), 1, 'webhook: one write for the deal');
is(status_of('deals', $deal), 'synced', 'webhook: record_status synced');

# ---- (a') an app integration's change: the per-event apply ----
$seq = $fake->control('GET', 'requests')->{lastSeq};
$change0 = last_change();
$fake->control('POST', "ui/deals/$deal", { properties => { amount => '250' },
	changeSource => 'INTEGRATION', sourceId => '999999' });
ok(settled(), 'per-event: amount change applied, trigger column sent');
is(q1("SELECT amount::text || ' / ' || (properties ->> 'description') FROM hubspot.deals WHERE hs_object_id = $deal"),
	'250 / amount now 250', 'per-event: the amount is applied and the BEFORE trigger set description');
$rec = $fake->control('GET', "records/deals/$deal")->{properties};
is($rec->{description}, 'amount now 250', "per-event: the BEFORE trigger's property reached HubSpot");
is($rec->{amount}, '250', "per-event: the integration's amount stays");
is(pushed_since('deals', $change0), 'trigger:description', 'per-event: only the trigger\'s property was pushed');
is(writes_since('deals', $seq), 1, 'per-event: one write for the deal');
is(status_of('deals', $deal), 'synced', 'per-event: record_status synced');

# ---- (c) a contact created in HubSpot: BEFORE INSERT fills a column ----
$seq = $fake->control('GET', 'requests')->{lastSeq};
$change0 = last_change();
my $created = $fake->control('POST', 'ui/contacts',
	{ properties => { email => 'rep-made@example.com', firstname => 'Rep' } });
my $contact = $created->{id};
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $contact"), 'webhook: created contact inserted');
ok(settled(), 'webhook: the trigger column of the new contact sent');
is(q1("SELECT jobtitle FROM hubspot.contacts WHERE hs_object_id = $contact"), 'Filled locally',
	'webhook: the BEFORE INSERT trigger filled jobtitle');
$rec = $fake->control('GET', "records/contacts/$contact")->{properties};
is($rec->{jobtitle}, 'Filled locally', "webhook: the BEFORE INSERT trigger's column reached HubSpot");
is($rec->{firstname}, 'Rep', "webhook: the rep's values stay");
is(pushed_since('contacts', $change0), 'trigger:jobtitle', 'webhook: only jobtitle was pushed, no create');
is(writes_since('contacts', $seq), 1, 'webhook: one write for the contact, an update');
is(status_of('contacts', $contact), 'synced', 'webhook: record_status synced');

# ---- the push worker's write-back of hs_object_id ----
$change0 = last_change();
q1("INSERT INTO hubspot.companies (name) VALUES ('Written back')");
ok(settled(), 'company created, write-back applied');
my $company = q1("SELECT hs_object_id FROM hubspot.companies WHERE name = 'Written back'");
is(q1("SELECT city FROM hubspot.companies WHERE hs_object_id = $company"), 'Linked on write-back',
	'write-back: the BEFORE trigger set city');
is($fake->control('GET', "records/companies/$company")->{properties}{city}, 'Linked on write-back',
	"write-back: the BEFORE trigger's column reached HubSpot");
is(pushed_since('companies', $change0), 'app:hubsync_id+name,trigger:city', 'write-back: the create, then only city');
is(status_of('companies', $company), 'synced', 'write-back: record_status synced');

# ---- quiet: nothing loops ----
$seq = $fake->control('GET', 'requests')->{lastSeq};
ok(settled(), 'quiet');
sleep 2;
is(writes_since('(?:deals|contacts|companies)', $seq), 0, 'nothing loops');

# ---- (b) polling: the rep's change and a new record found by the poller ----
$fake->configure(webhookUrl => undef, searchIndexLagMs => 0);
q1("ALTER SYSTEM SET hubsync.poll_interval = '1s'");
q1("SELECT pg_reload_conf()");
$seq = $fake->control('GET', 'requests')->{lastSeq};
$change0 = last_change();
$fake->control('POST', "ui/deals/$deal2", { properties => { dealstage => 'closedwon' } });
$created = $fake->control('POST', 'ui/contacts',
	{ properties => { email => 'polled-new@example.com', firstname => 'Polled' } });
my $contact2 = $created->{id};
ok($node->poll_query_until('postgres',
	"SELECT dealstage = 'closedwon' FROM hubspot.deals WHERE hs_object_id = $deal2"), 'poll: the stage applied');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $contact2"), 'poll: the new contact inserted');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.outbox"), 'poll: trigger columns sent');
$rec = $fake->control('GET', "records/deals/$deal2")->{properties};
is(($rec->{dealtype} // '') . ' ' . ($rec->{hs_priority} // ''), 'newbusiness high',
	"poll: the BEFORE trigger's columns reached HubSpot");
is($fake->control('GET', "records/contacts/$contact2")->{properties}{jobtitle}, 'Filled locally',
	"poll: the BEFORE INSERT trigger's column reached HubSpot");
is(pushed_since('deals', $change0), 'trigger:dealtype+hs_priority', 'poll: only the deal\'s trigger columns pushed');
is(pushed_since('contacts', $change0), 'trigger:jobtitle', 'poll: only the contact\'s trigger column pushed');
is(status_of('deals', $deal2), 'synced', 'poll: deal synced');
is(status_of('contacts', $contact2), 'synced', 'poll: contact synced');
is(q1("SELECT count(*) FROM hubsync.dead_letters"), 0, 'no dead letters');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed inbox events');

done_testing();
