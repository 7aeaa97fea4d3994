# Deal stage history from webhooks (issue 22): a deal moved through three
# stages in HubSpot, each change delivered as a deal.propertyChange
# webhook, has all three in hubspot.deal_stage_history, each entered at the
# event's occurredAt (HubSpot's time of the change, as its property history
# says), each exit the next entry; two changes delivered in one batch are
# both recorded.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $fake = HubSync::FakeHubSpot->start;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('bi_webhook', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url, 'hubsync.poll_interval' => '1h' });
$node->safe_psql('postgres',
	"SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook worker runs');
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub settled { return HubSync::Node::webhooks_applied($node, $fake); }

# a deal made here, pushed to HubSpot
q1("INSERT INTO hubspot.deals (dealname, dealstage, pipeline, amount, deal_currency_code)
    VALUES ('Hooked', 'appointmentscheduled', 'default', 10, 'EUR')");
ok(HubSync::Node::wait_outbox_empty($node), 'deal pushed');
ok(settled(), 'echo settled');
my $id = q1("SELECT hs_object_id FROM hubspot.deals WHERE dealname = 'Hooked'");

# three stage changes by a rep, the last two in one delivery batch
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'qualifiedtobuy' } });
ok(settled(), 'second stage delivered');
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'presentationscheduled' } });
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'closedwon' } });
ok(settled(), 'third and fourth stage delivered');
is(q1("SELECT dealstage FROM hubspot.deals WHERE hs_object_id = $id"), 'closedwon', 'deal is closedwon');

my $hist = $fake->request('GET', "/crm/v3/objects/deals/$id?propertiesWithHistory=dealstage", undef,
	{ Authorization => 'Bearer test-token' })->{propertiesWithHistory}{dealstage};
my @times = map { $_->{timestamp} } reverse @$hist;
is(scalar @times, 4, 'HubSpot has four stage values');
my $fmt = q{to_char(%s, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')};
my $rows = q1("SET TIME ZONE 'UTC'; SELECT string_agg(stage || '|' || source || '|' || "
	. sprintf($fmt, 'entered_at') . " || '|' || coalesce(" . sprintf($fmt, 'exited_at') . ", '-'), ',' ORDER BY entered_at, id)
	FROM hubspot.deal_stage_history WHERE deal_id = $id");
my @rows = split /,/, $rows;
is(scalar @rows, 4, 'four stages recorded') or diag($rows);
like($rows[0], qr/^appointmentscheduled\|local\|/, 'the first, from the local insert');
is($rows[1], "qualifiedtobuy|hubspot|$times[1]|$times[2]", 'second: at HubSpot\'s time, left when the third began');
is($rows[2], "presentationscheduled|hubspot|$times[2]|$times[3]", 'third: at HubSpot\'s time');
is($rows[3], "closedwon|hubspot|$times[3]|-", 'fourth: open');
my ($first_exit) = $rows[0] =~ /\|([^|]+)$/;
is($first_exit, $times[1], 'the local stage was left when HubSpot\'s change happened');

done_testing();
