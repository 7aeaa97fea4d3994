# User triggers on mirror tables: while the pull worker applies a rep's
# change (a deal moved to closedwon in HubSpot), a user trigger on
# hubspot.deals writes other rows (the contact becomes a customer, the
# deal gets a company association, and an AFTER trigger's UPDATE sets
# another column of the deal itself); those writes are captured and reach
# HubSpot with origin 'trigger', while the deal's own applied change is
# not pushed back.  The same for a trigger fired by the push worker's
# write-back of hs_object_id, and for a rep's change found by polling.
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
my ($node, $fake) = HubSync::Node::with_fake('usertrig',
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
			"SELECT (SELECT count(*) FROM hubsync.outbox) = 0
			    AND (SELECT count(*) FROM hubsync.association_outbox WHERE state <> 'failed') = 0");
		my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
		return 0 unless $f->{done};
		return 0 unless $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
		return 1 if q1("SELECT (SELECT count(*) FROM hubsync.outbox)
			+ (SELECT count(*) FROM hubsync.association_outbox WHERE state <> 'failed')") == 0;
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

# ---- records made by the app, pushed ----
q1("INSERT INTO hubspot.contacts (email, company, lifecyclestage) VALUES ('buyer\@example.com', 'Big one', 'lead'), ('polled\@example.com', 'Polled one', 'lead')");
q1("INSERT INTO hubspot.companies (name) VALUES ('Acme')");
q1("INSERT INTO hubspot.deals (dealname, dealstage, pipeline) VALUES ('Big one', 'appointmentscheduled', 'default'), ('Polled one', 'appointmentscheduled', 'default')");
ok(settled(), 'records pushed');
my $contact = q1("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'buyer\@example.com'");
my $company = q1("SELECT hs_object_id FROM hubspot.companies WHERE name = 'Acme'");
my $deal = q1("SELECT hs_object_id FROM hubspot.deals WHERE dealname = 'Big one'");
ok($contact && $company && $deal, 'records have HubSpot ids');

# ---- the application's trigger: a won deal makes its buyer a customer ----
q1(q{
CREATE FUNCTION deal_won() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.dealstage = 'closedwon' AND OLD.dealstage IS DISTINCT FROM 'closedwon' THEN
		UPDATE hubspot.contacts SET lifecyclestage = 'customer' WHERE company = NEW.dealname;
		UPDATE hubspot.deals SET dealtype = 'newbusiness' WHERE hubsync_id = NEW.hubsync_id;
		INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id)
		SELECT 'deals', NEW.hs_object_id, 'companies', c.hs_object_id
		FROM hubspot.companies c WHERE c.name = 'Acme';
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER deal_won AFTER UPDATE ON hubspot.deals FOR EACH ROW EXECUTE FUNCTION deal_won();
});

# ---- a rep moves the deal in HubSpot (webhook path) ----
my $seq = $fake->control('GET', 'requests')->{lastSeq};
my $change0 = q1("SELECT coalesce(max(id), 0) FROM hubsync.changes");
$fake->control('POST', "ui/deals/$deal", { properties => { dealstage => 'closedwon' } });
ok(settled(), 'stage change applied, trigger writes sent');
is(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $deal"), 'closedwon', 'deal applied');
is(q1("SELECT lifecyclestage FROM hubspot.contacts WHERE hs_object_id = $contact"), 'customer',
	'the trigger changed the contact');
is($fake->control('GET', "records/contacts/$contact")->{properties}{lifecyclestage}, 'customer',
	"the trigger's write to another row reached HubSpot");
my $rec = $fake->control('GET', "records/deals/$deal");
ok((grep { $_->{id} == $company } @{ $rec->{associations}{companies} || [] }),
	"the trigger's association reached HubSpot");
is(q1("SELECT string_agg(DISTINCT origin, ',') FROM hubsync.changes
	WHERE direction = 'out' AND op = 'update' AND object_type = 'contacts' AND hs_object_id = $contact AND properties ? 'lifecyclestage'"),
	'trigger', "the trigger's write is recorded with origin 'trigger'");
is($fake->control('GET', "records/deals/$deal")->{properties}{dealtype}, 'newbusiness',
	"the trigger's write to another column of the applied row reached HubSpot");
is($fake->control('GET', "records/deals/$deal")->{properties}{dealstage}, 'closedwon', 'the rep\'s stage stays');
is(q1("SELECT string_agg(origin || ':' || (SELECT string_agg(k, '+' ORDER BY k) FROM jsonb_object_keys(properties) k), ',')
	FROM hubsync.changes WHERE id > $change0 AND direction = 'out' AND object_type = 'deals'"),
	'trigger:dealtype', "only the trigger's column of the deal was pushed, not the applied stage (no loop)");
is(writes_since('deals', $seq), 1, 'one write for the deal: the trigger\'s column');
is(q1("SELECT count(*) FROM hubsync.dead_letters"), 0, 'no dead letters');

# ---- the push worker's write-back of hs_object_id fires a trigger ----
q1(q{
CREATE FUNCTION contact_linked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE hubspot.companies SET city = 'linked ' || NEW.email WHERE name = 'Acme';
	RETURN NULL;
END $$;
CREATE TRIGGER contact_linked AFTER UPDATE OF hs_object_id ON hubspot.contacts FOR EACH ROW
	WHEN (OLD.hs_object_id IS NULL AND NEW.hs_object_id IS NOT NULL)
	EXECUTE FUNCTION contact_linked();
});
$seq = $fake->control('GET', 'requests')->{lastSeq};
q1("INSERT INTO hubspot.contacts (email) VALUES ('second\@example.com')");
ok(settled(), 'contact created and the write-back applied');
is(q1("SELECT city FROM hubspot.companies WHERE hs_object_id = $company"), 'linked second@example.com',
	'the write-back fired the trigger');
is($fake->control('GET', "records/companies/$company")->{properties}{city}, 'linked second@example.com',
	"the write-back trigger's write reached HubSpot");
is(writes_since('contacts', $seq), 1, 'the new contact was sent once, its write-back not pushed');

# ---- quiet: nothing more is sent ----
$seq = $fake->control('GET', 'requests')->{lastSeq};
ok(settled(), 'quiet');
sleep 2;
is(writes_since('(?:deals|contacts|companies)', $seq), 0, 'nothing loops');

# ---- polling: the rep's change found by the poller, no webhook ----
$fake->configure(webhookUrl => undef, searchIndexLagMs => 0);
q1("ALTER SYSTEM SET hubsync.poll_interval = '1s'");
q1("SELECT pg_reload_conf()");
my $deal2 = q1("SELECT hs_object_id FROM hubspot.deals WHERE dealname = 'Polled one'");
my $contact2 = q1("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'polled\@example.com'");
my $change1 = q1("SELECT coalesce(max(id), 0) FROM hubsync.changes");
$fake->control('POST', "ui/deals/$deal2", { properties => { dealstage => 'closedwon' } });
ok($node->poll_query_until('postgres',
	"SELECT dealstage = 'closedwon' FROM hubspot.deals WHERE hs_object_id = $deal2"), 'the poller applied the stage');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.outbox"), 'trigger writes sent');
is($fake->control('GET', "records/contacts/$contact2")->{properties}{lifecyclestage}, 'customer',
	"the trigger's write, fired by a polled change, reached HubSpot");
is(q1("SELECT string_agg(origin || ':' || (SELECT string_agg(k, '+' ORDER BY k) FROM jsonb_object_keys(properties) k), ',' ORDER BY object_type)
	FROM hubsync.changes WHERE id > $change1 AND direction = 'out' AND object_type <> 'associations'"),
	'trigger:lifecyclestage,trigger:dealtype', 'only the trigger\'s writes were pushed');
is(q1("SELECT string_agg(origin, ',') FROM hubsync.changes WHERE id > $change1 AND direction = 'out' AND object_type = 'associations'"),
	'trigger', "the trigger's association too, with origin 'trigger'");

done_testing();
