# Hostile HubSpot answers: huge, deeply nested, wrong JSON types, missing
# fields, not UTF-8, truncated, bare scalars, escaped NULs.  On the push
# path and the webhook read path: the error is recorded against the
# affected records, no worker crashes, nothing is half-applied, and the
# work completes once HubSpot answers properly again.
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
my $node = HubSync::Node::new_node('hostile_answers', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url });
$node->safe_psql('postgres',
	"SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");
ok(HubSync::Node::wait_for_workers($node), 'workers run');
sub q1 { return $node->safe_psql('postgres', $_[0]); }
my $pids = HubSync::Node::worker_pids($node);
my @modes = qw(huge deep types missing nonutf8 truncated scalar nul);
my $n = 0;

# --- push: the batch upsert answers garbage (after doing the write, for
# half of the modes), twice; then properly
for my $mode (@modes)
{
	$n++;
	my $apply = ($n % 2) ? JSON::PP::true : JSON::PP::false;
	$fake->control('POST', 'faults', { queue => [ { hostile => $mode, match => '/batch/upsert',
		count => 2, apply => $apply } ] });
	my $id = q1("INSERT INTO hubspot.contacts (email, firstname) VALUES ('$mode\@example.com', 'F$n') RETURNING hubsync_id");
	ok($node->poll_query_until('postgres',
		"SELECT last_error IS NOT NULL AND attempts >= 1 FROM hubsync.outbox WHERE hubsync_id = '$id'"),
		"$mode: the error is recorded on the record's queued change");
	note(q1("SELECT last_status || ' ' || last_error FROM hubsync.outbox WHERE hubsync_id = '$id'"));
	ok($node->poll_query_until('postgres',
		"SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
		"$mode: pushed once HubSpot answers properly");
	my $hs = q1("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$id'");
	my $rec = $fake->control('GET', "records/contacts/$hs");
	is($rec->{properties}{hubsync_id}, $id, "$mode: the HubSpot record is ours");
	is($fake->control('GET', 'stats')->{contacts}{live}, $n, "$mode: and there is exactly one per insert");
}
is(q1('SELECT count(*) FROM hubsync.dead_letters'), '0', 'no dead letters (garbage is transient)');

# --- the webhook read path: a rep creates a deal, hubsync's batch read of
# it gets garbage, the events wait; later they apply, whole
for my $mode (@modes)
{
	my $before = q1('SELECT count(*) FROM hubspot.deals');
	$fake->control('POST', 'faults', { queue => [ { hostile => $mode, match => '/deals/batch/read', count => 1 } ] });
	my $deal = $fake->control('POST', 'ui/deals', { properties => { dealname => "Deal $mode", amount => '42.5',
		dealstage => 'appointmentscheduled', pipeline => 'default' } });
	my $id = $deal->{id};
	$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'"), "$mode: events applied in the end");
	is(q1("SELECT dealname || '|' || amount || '|' || dealstage FROM hubspot.deals WHERE hs_object_id = $id"),
		"Deal $mode|42.5|appointmentscheduled", "$mode: the deal arrived whole");
	is(q1('SELECT count(*) FROM hubspot.deals') - $before, 1, "$mode: exactly once");
}
ok($node->log_contains('was not a valid list of records'), 'the unusable answers were logged');

# --- the webhook read answers 207 with a transient per-input error: the
# record exists, it was just not read.  Its events wait and apply later,
# instead of being skipped as "no such record".
{
	my $before = q1('SELECT count(*) FROM hubspot.deals');
	$fake->control('POST', 'faults', { queue => [ { partial207 => JSON::PP::true, failIndexes => [0],
		category => 'INTERNAL_ERROR', match => '/deals/batch/read', count => 1 } ] });
	my $deal = $fake->control('POST', 'ui/deals', { properties => { dealname => 'Deal 207', amount => '7',
		dealstage => 'appointmentscheduled', pipeline => 'default' } });
	my $id = $deal->{id};
	$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'"), '207: events applied in the end');
	is(q1("SELECT dealname || '|' || amount FROM hubspot.deals WHERE hs_object_id = $id"),
		'Deal 207|7', '207: the deal arrived whole');
	is(q1('SELECT count(*) FROM hubspot.deals') - $before, 1, '207: exactly once');
	ok($node->log_contains(qr/HTTP 20[07] with errors other than OBJECT_NOT_FOUND/), '207: the failed read was logged');
	is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $id AND state = 'skipped' AND error LIKE '%not found%'"), '0',
		'207: no event of the deal was skipped');
}
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), '0', 'no event failed for good');

# --- nobody crashed
is_deeply(HubSync::Node::worker_pids($node), $pids, 'the same worker processes throughout');
ok(!$node->log_contains('terminated by signal|exited with exit code|stack depth limit'),
	'no worker died, no stack overflow');
my ($hang) = grep { $_->{fault} } @{ $fake->control('GET', 'requests')->{requests} };
ok(defined $hang, 'faults really fired');

done_testing();
