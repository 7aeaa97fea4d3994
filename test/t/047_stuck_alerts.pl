# Alerts for the stuck states beyond dead letters and lag: a poller failing
# round after round (poll_failing), a worker down (worker_down), webhook
# signature refusals rising (webhook_refused), association changes HubSpot
# refused (association_failed, now through hubsync._alert: stored in
# hubsync.alerts and rate-limited).  Each is stored in hubsync.alerts, sent
# on NOTIFY hubsync_alerts, and carries neither CRM values nor HubSpot's
# text.  (auth_refresh_failed is provoked in 090_oauth.pl.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('stuck_alerts', conf => {
	'hubsync.housekeeping_interval' => '1s',
	'hubsync.alert_interval' => '1h',
	'hubsync.poll_interval' => '1s',
	'hubsync.alert_poll_failing' => '3s',
	'hubsync.alert_worker_down' => '1s',
	'hubsync.alert_webhook_refused' => '2',
});
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
ok(HubSync::Node::wait_for_workers($node), 'workers running');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN hubsync_alerts');
my @heard;

# heard -- poll the listener until an alert of this kind arrived; returns
# its decoded payload
sub heard
{
	my ($kind) = @_;
	for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
	{
		my $out = $listener->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "hubsync_alerts" with payload "(.*)" received/g)
		{
			push @heard, decode_json($1);
		}
		my @hit = grep { $_->{alert} eq $kind } @heard;
		return $hit[0] if @hit;
		select(undef, undef, undef, 0.1);
	}
	return undef;
}

# ---- association_failed: through hubsync._alert, stored, rate-limited ----
$sql->("SELECT hubsync._assoc_retry(ARRAY[9001, 9002]::bigint[], 400, 'HubSpot says: label SECRETLABEL unknown', 0, true, true)");
my $a = heard('association_failed');
ok($a, 'association_failed: heard');
is(join(',', @{ $a->{ids} }) . '|' . $a->{status}, '9001,9002|400', 'association_failed: ids and status');
is($sql->("SELECT payload ->> 'alert' || ' ' || sent FROM hubsync.alerts WHERE alert = 'association_failed'"),
	'association_failed 1', 'association_failed: stored in hubsync.alerts');
$sql->("SELECT hubsync._assoc_retry(ARRAY[9003]::bigint[], 400, 'again', 0, true, true)");
is($sql->("SELECT sent || '/' || suppressed FROM hubsync.alerts WHERE alert = 'association_failed'"),
	'1/1', 'association_failed: a second within alert_interval is counted, not sent');
$sql->("SELECT hubsync._assoc_retry(ARRAY[9004]::bigint[], 503, 'retry later', 0, true, false)");
is($sql->("SELECT sent || '/' || suppressed FROM hubsync.alerts WHERE alert = 'association_failed'"),
	'1/1', 'association_failed: a change to retry is no alert');
unlike($sql->("SELECT payload::text FROM hubsync.alerts WHERE alert = 'association_failed'"),
	qr/SECRETLABEL|HubSpot says/, 'association_failed: HubSpot\'s message is not in the payload');

# ---- webhook_refused: deliveries with a bad signature ----
my $ts = $sql->("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
my $url = 'https://example.com/hubspot/webhooks';
for my $i (1 .. 2)
{
	$node->psql('postgres', "SELECT hubsync.ingest_webhook('POST', '$url', '[]', 'forged$i', '$ts')");
}
sleep 3;
is($sql->("SELECT count(*) FROM hubsync.alerts WHERE alert = 'webhook_refused'"), '0',
	'webhook_refused: not more than the threshold (2) refused, no alert');
is($sql->("SELECT value FROM hubsync.alert_watch WHERE watch = 'webhook_refused'"), '2',
	'webhook_refused: the last count seen is kept');
for my $i (3 .. 5)
{
	$node->psql('postgres', "SELECT hubsync.ingest_webhook('POST', '$url', '[]', 'forged$i', '$ts')");
}
$a = heard('webhook_refused');
ok($a, 'webhook_refused: heard once three more were refused');
is($a->{refused_signature} . '|' . $a->{refused_signature_total} . '|' . $a->{threshold}, '3|5|2',
	'webhook_refused: refused since the last check, total, threshold');
is($sql->("SELECT count(*) FROM hubsync.alerts WHERE alert = 'webhook_refused'"), '1',
	'webhook_refused: stored in hubsync.alerts');

# ---- worker_down: the push worker killed (back after 5 s) ----
my $pid = HubSync::Node::worker_pids($node)->{'hubsync push'};
$sql->("SELECT pg_terminate_backend($pid)");
$a = heard('worker_down');
ok($a, 'worker_down: heard');
is($a->{worker} . '|' . $a->{threshold_seconds}, 'hubsync push|1', 'worker_down: names the worker and the threshold');
ok($a->{down_seconds} >= 1 && $a->{state} ne 'running', 'worker_down: how long, its state');
is($sql->("SELECT count(*) FROM hubsync.alerts WHERE alert = 'worker_down' AND key = 'hubsync push'"), '1',
	'worker_down: stored in hubsync.alerts');
ok(HubSync::Node::wait_for_workers($node), 'the push worker is back');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubsync.alert_watch WHERE watch LIKE 'worker_down:%'"),
	'worker_down: forgotten once it runs again');

# ---- poll_failing: every search fails ----
$fake->control('POST', 'faults', { queue => [ { status => 503, match => '/search', count => 1000000 } ] });
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM hubsync.poll_state WHERE last_error IS NOT NULL"),
	'the poller fails');
$a = heard('poll_failing');
ok($a, 'poll_failing: heard');
ok($a->{failing_seconds} >= 3 && $a->{threshold_seconds} == 3 && $a->{object_type} ne '',
	'poll_failing: object type, how long, threshold');
ok(!exists $a->{last_error} && !exists $a->{message}, 'poll_failing: the error stays in hubsync.poll_state');
is($sql->("SELECT count(*) > 0 FROM hubsync.alerts WHERE alert = 'poll_failing'"), 't',
	'poll_failing: stored in hubsync.alerts');
$fake->control('DELETE', 'faults');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubsync.alert_watch WHERE watch LIKE 'poll_failing:%'"),
	'poll_failing: forgotten once the polls succeed again');

$listener->quit;
$node->stop;
$fake->stop;
done_testing();
