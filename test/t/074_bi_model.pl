# BI model through the fake HubSpot (issue 22):
#   - the pull worker copies owners (archived ones flagged) and pipelines
#     with their stage metadata when it starts, and again on
#     hubsync.refresh_metadata(); what HubSpot no longer lists is kept and
#     flagged archived;
#   - a backfill of deals is followed by a property history pass: a deal
#     that went through three stages in HubSpot before hubsync saw it has
#     all three in hubspot.deal_stage_history, at HubSpot's times;
#   - a deal moved through three stages in HubSpot while hubsync runs
#     (poller) has all three, entered at HubSpot's updatedAt, each exit
#     the next entry;
#   - revenue_by_month counts a deal won in a custom pipeline from its
#     stage metadata.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;
use JSON::PP;

my ($node, $fake) = HubSync::Node::with_fake('bi_model',
	fake_config => { searchIndexLagMs => 0, validateEnumerations => JSON::PP::false },
	conf => { 'hubsync.poll_interval' => '1h' });
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# --- owners and pipelines, on start
ok($node->poll_query_until('postgres',
	"SELECT synced_at IS NOT NULL FROM hubsync.metadata_sync"), 'owners and pipelines copied on start');
is(q1("SELECT string_agg(owner_id || ':' || first_name || ':' || archived, ',' ORDER BY owner_id) FROM hubspot.owners"),
	'11:Ann:false,12:Bob:false,13:Cy:true', 'owners, the archived one flagged');
is(q1("SELECT teams FROM hubspot.owners WHERE owner_id = '11'"),
	'[{"id": "7", "name": "EMEA", "primary": true}]', 'teams as HubSpot sends them');
is(q1("SELECT string_agg(stage_id || ':' || coalesce(probability::text, '-') || ':' || closed || ':' || won, ',' ORDER BY display_order)
       FROM hubspot.pipeline_stages WHERE object_type = 'deals'"),
	'appointmentscheduled:0.2:false:false,qualifiedtobuy:0.4:false:false,closedwon:1.0:true:true,closedlost:0.0:true:false',
	'deal stages with probability, closed and won');
is(q1("SELECT string_agg(stage_id || ':' || closed, ',' ORDER BY display_order) FROM hubspot.pipeline_stages WHERE object_type = 'tickets'"),
	'1:false,4:true', 'ticket stages: closed from ticketState');
is(q1("SELECT owners || ',' || pipelines || ',' || stages || ',' || (last_error IS NULL) FROM hubsync.metadata_sync"),
	'3,2,6,true', 'the copy says what it read');

# --- on demand: a custom pipeline appears, an owner and a stage go
$fake->configure(
	owners => [ { id => '11', email => 'ann@example.com', firstName => 'Ann', lastName => 'Lee', userId => 501 } ],
	pipelines => { deals => [
		{ id => 'default', label => 'Sales Pipeline', stages => [
			{ id => 'appointmentscheduled', label => 'Appointment Scheduled', metadata => { isClosed => 'false', probability => '0.2' } },
			{ id => 'qualifiedtobuy', label => 'Qualified To Buy', metadata => { isClosed => 'false', probability => '0.4' } },
			{ id => 'closedwon', label => 'Closed Won', metadata => { isClosed => 'true', probability => '1.0' } } ] },
		{ id => '9001', label => 'Partners', stages => [
			{ id => '9001-a', label => 'Talking', metadata => { isClosed => 'false', probability => '0.3' } },
			{ id => '9001-won', label => 'Signed', metadata => { isClosed => 'true', probability => '1.0' } } ] } ] });
my $before = q1("SELECT synced_at FROM hubsync.metadata_sync");
q1("SELECT hubsync.refresh_metadata()");
ok($node->poll_query_until('postgres',
	"SELECT requested_at IS NULL AND synced_at > '$before' FROM hubsync.metadata_sync"), 'refresh_metadata() answered');
is(q1("SELECT string_agg(owner_id || ':' || archived, ',' ORDER BY owner_id) FROM hubspot.owners"),
	'11:false,12:true,13:true', 'an owner no longer listed is kept, flagged archived');
is(q1("SELECT string_agg(pipeline_id || '/' || stage_id || ':' || archived, ',' ORDER BY pipeline_id, display_order)
       FROM hubspot.pipeline_stages WHERE object_type = 'deals'"),
	'9001/9001-a:false,9001/9001-won:false,default/appointmentscheduled:false,default/qualifiedtobuy:false,default/closedwon:false,default/closedlost:true',
	'the custom pipeline is there; the stage no longer listed is kept, flagged archived');
my $reqs = $fake->control('GET', 'requests');
my @paths = map { $_->{path} } @{ ref $reqs eq 'HASH' ? $reqs->{requests} : $reqs };
ok((grep { m{^/crm/v3/owners} } @paths) && (grep { m{^/crm/v3/pipelines/deals} } @paths),
	'owners and pipelines read from the owners and pipelines APIs') or diag(join(' ', @paths[0 .. 5]));

# --- backfill: earlier stages from HubSpot's property history
my $id = $fake->control('POST', 'ui/deals', { properties => { dealname => 'Old deal', pipeline => 'default',
	dealstage => 'appointmentscheduled', amount => '100', deal_currency_code => 'EUR' } })->{id};
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'qualifiedtobuy' } });
sleep 1;
$fake->control('POST', "ui/deals/$id", { properties => { dealstage => 'closedwon', closedate => '2025-03-03T00:00:00Z' } });
my $hist = $fake->request('GET', "/crm/v3/objects/deals/$id?propertiesWithHistory=dealstage", undef,
	{ Authorization => 'Bearer test-token' })->{propertiesWithHistory}{dealstage};
my @times = map { $_->{timestamp} } reverse @$hist;
is(scalar @times, 3, 'HubSpot has three stage changes');

q1("SELECT hubsync.backfill('deals')");
ok($node->poll_query_until('postgres',
	"SELECT state = 'done' FROM hubsync.history_backfills WHERE object_type = 'deals'"), 'history pass after the backfill done');
my $rows = q1("SET TIME ZONE 'UTC'; SELECT string_agg(stage || '|' || to_char(entered_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '|' || coalesce(to_char(exited_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '-') || '|' || source, ',' ORDER BY entered_at)
	FROM hubspot.deal_stage_history WHERE deal_id = $id");
is($rows, "appointmentscheduled|$times[0]|$times[1]|history,qualifiedtobuy|$times[1]|$times[2]|history,closedwon|$times[2]|-|history",
	'all three stages from property history, at HubSpot\'s times, each exit the next entry');
is(q1("SELECT records FROM hubsync.history_backfills WHERE object_type = 'deals'"), 1, 'one deal read');

# --- backfill of subscriptions: their revenue history from property history
my $sub = $fake->control('POST', 'ui/subscriptions', { properties => { hs_name => 'Plan', hs_status => 'active',
	hs_recurring_revenue => '100', hs_recurring_billing_frequency => 'monthly', hs_start_date => '2025-01-01',
	hs_currency_code => 'EUR' } })->{id};
sleep 1;
$fake->control('POST', "ui/subscriptions/$sub", { properties => { hs_recurring_revenue => '150' } });
$hist = $fake->request('GET', "/crm/v3/objects/subscriptions/$sub?propertiesWithHistory=hs_recurring_revenue", undef,
	{ Authorization => 'Bearer test-token' })->{propertiesWithHistory}{hs_recurring_revenue};
@times = map { $_->{timestamp} } reverse @$hist;
q1("SELECT hubsync.backfill('subscriptions')");
ok($node->poll_query_until('postgres',
	"SELECT state = 'done' FROM hubsync.history_backfills WHERE object_type = 'subscriptions'"), 'subscription history pass done');
is(q1("SET TIME ZONE 'UTC'; SELECT string_agg(to_char(valid_from, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '|' || status || '|' || recurring_revenue || '|' || billing_frequency || '|' || currency || '|' || start_date || '|' || source, ',' ORDER BY valid_from)
	FROM hubspot.subscription_history WHERE subscription_id = $sub"),
	"$times[0]|active|100|monthly|EUR|2025-01-01|history,$times[1]|active|150|monthly|EUR|2025-01-01|history",
	'the upgrade is in the subscription history at HubSpot\'s time');

# --- live: a deal moves through three stages while hubsync polls
q1("ALTER SYSTEM SET hubsync.poll_interval = '1s'; SELECT pg_reload_conf()");
my $live = $fake->control('POST', 'ui/deals', { properties => { dealname => 'Live deal', pipeline => '9001',
	dealstage => '9001-a', amount => '250', deal_currency_code => 'USD' } })->{id};
ok($node->poll_query_until('postgres', "SELECT dealstage = '9001-a' FROM hubspot.deals WHERE hs_object_id = $live"),
	'new deal polled');
$fake->control('POST', "ui/deals/$live", { properties => { pipeline => 'default', dealstage => 'qualifiedtobuy' } });
ok($node->poll_query_until('postgres', "SELECT dealstage = 'qualifiedtobuy' FROM hubspot.deals WHERE hs_object_id = $live"),
	'second stage polled');
$fake->control('POST', "ui/deals/$live", { properties => { pipeline => '9001', dealstage => '9001-won', closedate => '2025-04-10T12:00:00Z' } });
ok($node->poll_query_until('postgres', "SELECT dealstage = '9001-won' FROM hubspot.deals WHERE hs_object_id = $live"),
	'third stage polled');
$hist = $fake->request('GET', "/crm/v3/objects/deals/$live?propertiesWithHistory=dealstage", undef,
	{ Authorization => 'Bearer test-token' })->{propertiesWithHistory}{dealstage};
@times = map { $_->{timestamp} } reverse @$hist;
$rows = q1("SET TIME ZONE 'UTC'; SELECT string_agg(pipeline || '/' || stage || '|' || to_char(entered_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '|' || coalesce(to_char(exited_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '-') || '|' || source, ',' ORDER BY entered_at)
	FROM hubspot.deal_stage_history WHERE deal_id = $live");
is($rows, "9001/9001-a|$times[0]|$times[1]|hubspot,default/qualifiedtobuy|$times[1]|$times[2]|hubspot,9001/9001-won|$times[2]|-|hubspot",
	'three stages, entered at HubSpot\'s times, each exit the next entry');

# --- won in a custom pipeline, from stage metadata
is(q1("SELECT string_agg(month || ':' || pipeline || ':' || currency || ':' || deals || ':' || amount, ',' ORDER BY month)
       FROM hubspot.revenue_by_month"),
	'2025-03-01:default:EUR:1:100,2025-04-01:9001:USD:1:250', 'revenue_by_month: won by stage metadata in any pipeline, per currency');

# --- a local stage change is recorded too (and pushed)
q1("UPDATE hubspot.deals SET dealstage = 'closedlost' WHERE hs_object_id = $id");
is(q1("SELECT string_agg(stage || ':' || source || ':' || (exited_at IS NULL), ',' ORDER BY entered_at, id) FROM hubspot.deal_stage_history WHERE deal_id = $id"),
	'appointmentscheduled:history:false,qualifiedtobuy:history:false,closedwon:history:false,closedlost:local:true',
	'a local update closes the open stage and opens the new one');
ok(HubSync::Node::wait_outbox_empty($node), 'local change pushed');
is(q1("SELECT count(*) FROM hubspot.deal_stage_history WHERE deal_id = $id"), 4, 'the echo from HubSpot adds nothing');

done_testing();
