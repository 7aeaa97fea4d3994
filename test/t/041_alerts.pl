# Alerts: NOTIFY hubsync_alerts with a JSON payload when a change is
# dead-lettered, HubSpot refuses the credentials, the oldest pending change
# passes hubsync.alert_pending_age, inbound lag passes
# hubsync.alert_inbound_lag and the day's quota passes
# hubsync.alert_daily_quota -- each sent once per hubsync.alert_interval,
# repeats counted in hubsync.alerts.  Also hubsync.status, hubsync.summary
# and hubsync.quota_status() while it happens.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('alerts', conf => {
	'hubsync.housekeeping_interval' => '1s',
	'hubsync.alert_interval' => '1h',
	'hubsync.alert_pending_age' => '3s',
	'hubsync.alert_inbound_lag' => '3s',
});
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# a session that listens, and every alert it has heard
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

my $n = 0;
sub new_contact
{
	$n++;
	return $sql->("INSERT INTO hubspot.contacts (email) VALUES ('a$n\@example.com') RETURNING hubsync_id");
}

new_contact();
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up contact pushed');
is($sql->("SELECT last_push IS NOT NULL AND last_pull IS NULL FROM hubsync.status WHERE object_type = 'contacts'"),
	't', 'status: last push of contacts shown, no pull yet');
is($sql->("SELECT count(*) FROM hubsync.status WHERE last_push IS NOT NULL"), '1',
	'status: only contacts were pushed');
is($sql->('SELECT requests > 0 AND responses_2xx > 0 AND window_used > 0 AND window_left = window_limit - window_used FROM hubsync.quota_status()'),
	't', 'quota_status counts requests and the window');
is($sql->('SELECT push_worker || pull_worker || webhook_worker || enrich_worker || auth FROM hubsync.summary'),
	'runningrunningrunningrunningok', 'summary: workers and auth');

# ---- the change feed keeps before and after values, both ways ----
$sql->("UPDATE hubspot.contacts SET email = 'a1-new\@example.com' WHERE email = 'a1\@example.com'");
ok(HubSync::Node::wait_outbox_empty($node), 'update pushed');
is($sql->("SELECT before ->> 'email' || ' -> ' || (properties ->> 'email') FROM hubsync.changes
           WHERE direction = 'out' AND op = 'update' ORDER BY id DESC LIMIT 1"),
	'a1@example.com -> a1-new@example.com', 'change feed, out: before and after values');
my $hs = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'a1-new\@example.com'");
my $ts = $sql->("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
my $body = qq{[{"eventId":1,"subscriptionId":7,"portalId":62515,"appId":1,"occurredAt":$ts,"subscriptionType":"contact.propertyChange","objectId":$hs,"propertyName":"email","propertyValue":"a1-rep\@example.com","changeSource":"CRM_UI"}]};
my $url = 'https://example.com/hubspot/webhooks';
$sql->("SELECT hubsync.ingest_webhook('POST', '$url', '$body',
	hubsync._webhook_signature(3, 'hubsync-test-secret', 'POST', '$url', '$body', '$ts'), '$ts')");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubspot.contacts WHERE email = 'a1-rep\@example.com'"),
	'a rep\'s edit applied');
is($sql->("SELECT before ->> 'email' || ' -> ' || (properties ->> 'email') FROM hubsync.changes
           WHERE direction = 'in' ORDER BY id DESC LIMIT 1"),
	'a1-new@example.com -> a1-rep@example.com', 'change feed, in: before and after values');
is($sql->("SELECT last_pull IS NOT NULL FROM hubsync.status WHERE object_type = 'contacts'"), 't',
	'status: last pull of contacts shown');

# ---- dead letter: sent at once, the second within the interval is counted ----
$fake->control('POST', 'faults', { queue => [ { status => 400, match => '/batch/', count => 2 } ] });
my $dead = new_contact();
my $a = heard('dead_letter');
ok($a, 'dead letter: alert heard');
is($a->{object_type} . '|' . $a->{hubsync_id} . '|' . $a->{status}, "contacts|$dead|400",
	'dead letter: payload names the object type, the record and the status');
ok(defined $a->{dead_letter_id} && defined $a->{at} && $a->{database} eq 'postgres',
	'dead letter: payload has the dead letter\'s id, time, database');
ok(!exists $a->{message}, 'dead letter: HubSpot\'s message stays in hubsync.dead_letters (any role may LISTEN)');
new_contact();
ok($node->poll_query_until('postgres', 'SELECT count(*) = 2 FROM hubsync.dead_letters'), 'a second dead letter');
is($sql->("SELECT sent || '/' || suppressed FROM hubsync.alerts WHERE alert = 'dead_letter' AND key = 'contacts'"),
	'1/1', 'dead letter: the second within alert_interval is counted, not sent');

# ---- pending age: HubSpot keeps failing, the change ages ----
$fake->control('POST', 'faults', { queue => [ { hang => JSON::PP::true, ms => 3000, match => '/batch/' },
	{ status => 503, match => '/batch/', count => 100000 } ] });
new_contact();
ok($node->poll_query_until('postgres',
	"SELECT query ~ '^sending [0-9]+ contacts to HubSpot \\(batch/(upsert|update)\\)\$' FROM pg_stat_activity WHERE backend_type = 'hubsync push'"),
	'pg_stat_activity shows what the push worker sends');

$a = heard('pending_age');
ok($a, 'pending age: alert heard');
is($a->{object_type}, 'contacts', 'pending age: names the object type');
ok($a->{oldest_pending_seconds} >= 3 && $a->{threshold_seconds} == 3, 'pending age: age and threshold in the payload');
is($sql->("SELECT pending + in_flight > 0 AND oldest_pending_age > '3s' FROM hubsync.status WHERE object_type = 'contacts'"),
	't', 'status shows the aged change');
ok($node->poll_query_until('postgres', 'SELECT retries > 0 AND responses_5xx > 0 FROM hubsync.quota_status()'),
	'quota_status counts 5xx and retries');
# several housekeeping rounds later it was still sent once
ok($node->poll_query_until('postgres', "SELECT suppressed >= 2 FROM hubsync.alerts WHERE alert = 'pending_age'"),
	'pending age: repeats are counted');
is($sql->("SELECT sent FROM hubsync.alerts WHERE alert = 'pending_age'"), '1', 'pending age: sent once per interval');
$fake->control('DELETE', 'faults');
ok(HubSync::Node::wait_outbox_empty($node), 'drained once HubSpot answers again');

# ---- auth refused ----
$sql->("SELECT hubsync.set_credentials(access_token => 'revoked-token')");
new_contact();
$a = heard('auth_failed');
ok($a, 'auth: alert heard');
like($a->{hint}, qr/set_credentials/, 'auth: payload says what to do');
unlike(encode_json($a), qr/revoked-token|test-token/, 'auth: no secret in the payload');
is($sql->('SELECT auth FROM hubsync.summary'), 'refused', 'summary shows the refusal');
ok($node->poll_query_until('postgres',
	"SELECT query LIKE 'waiting: no valid HubSpot credentials%' FROM pg_stat_activity WHERE backend_type = 'hubsync push'"),
	'pg_stat_activity says why the push worker waits');
$sql->("SELECT hubsync.set_credentials(access_token => 'test-token')");
ok(HubSync::Node::wait_outbox_empty($node), 'new credentials resume pushing');

# ---- inbound lag: an event that cannot be applied yet ----
$fake->control('POST', 'faults', { queue => [ { status => 503, match => '/batch/read', count => 100000 } ] });
my $occurred = $sql->("SELECT ((extract(epoch FROM now()) - 60) * 1000)::bigint");
$sql->(qq{INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at, event)
	VALUES ('alert-test-lag', 'contact.creation', '0-1', 987654321, $occurred,
	        '{"subscriptionType": "contact.creation", "objectId": 987654321, "occurredAt": $occurred}')});
$a = heard('inbound_lag');
ok($a, 'inbound lag: alert heard');
ok($a->{lag_seconds} >= 60 && $a->{pending_events} >= 1, 'inbound lag: lag and pending events in the payload');
is($sql->("SELECT inbound_pending || '|' || (inbound_lag >= '60s') FROM hubsync.status WHERE object_type = 'contacts'"),
	'1|true', 'status: inbound lag and pending events of contacts');
is($sql->("SELECT inbound_lag FROM hubsync.status WHERE object_type = 'deals'"), '00:00:00',
	'status: no inbound lag for deals');
$fake->control('DELETE', 'faults');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'"),
	'the event is handled once reads work');

# ---- daily quota: the day's use passes 90% of the limit ----
my $used = $sql->('SELECT daily_used FROM hubsync.quota_status()');
$node->append_conf('postgresql.conf', "hubsync.daily_limit = " . ($used + 1) . "\n");
$node->reload;
$a = heard('daily_quota');
ok($a, 'daily quota: alert heard');
ok($a->{daily_used} >= $used && $a->{daily_limit} == $used + 1 && $a->{threshold_percent} == 90,
	'daily quota: use, limit and threshold in the payload');
is($sql->('SELECT daily_left <= 1 FROM hubsync.summary'), 't', 'summary: daily budget nearly used');

# one row per kind, each sent once
is($sql->("SELECT string_agg(alert || ':' || sent, ',' ORDER BY alert) FROM hubsync.alerts"),
	'auth_failed:1,daily_quota:1,dead_letter:1,inbound_lag:1,pending_age:1', 'every alert kind sent once');
my @kinds = map { $_->{alert} } @heard;
is(scalar(grep { $_ eq 'pending_age' } @kinds), 1, 'the listener heard pending_age once');

$listener->quit;
$node->stop;
done_testing();
