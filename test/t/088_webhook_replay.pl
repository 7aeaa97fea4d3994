# Replayed webhook deliveries: a delivery signed only with v1 (no signed
# timestamp) is refused unless hubsync.webhook_legacy_signatures is on; and
# whatever signed it, and whichever way it came in (receiver or
# hubsync.ingest_webhook), a deletion or privacy deletion older than the
# record's last known change removes nothing: the event is skipped with
# its reason and the newer row is kept.  Fresh deletions still apply.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $fake = HubSync::FakeHubSpot->start;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('replay', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url });
$node->safe_psql('postgres', "SET log_statement = 'none';
	SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
my $url = "http://127.0.0.1:$port/hubspot/webhooks";
$fake->configure(webhookUrl => $url);
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->canonical;
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook worker runs');
sleep 1;

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub counter { return q1("SELECT value FROM hubsync.webhook_stats WHERE counter = '$_[0]'"); }

# settled -- the fake delivered everything and the inbox is applied
sub settled
{
	my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	return $f->{done} && $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
}

# post_v1 -- POST a body with only the v1 signature headers
sub post_v1
{
	my ($body) = @_;
	return $http->request('POST', $url, { content => $body, headers => {
		'Content-Type' => 'application/json',
		'X-HubSpot-Signature' => sha256_hex('hubsync-test-secret' . $body),
		'X-HubSpot-Signature-Version' => 'v1' } });
}

# ingest_v3 -- a freshly v3-signed delivery through hubsync.ingest_webhook()
sub ingest_v3
{
	my ($body) = @_;
	my $ts = int(q1("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"));
	my $sig = q1("SELECT hubsync._webhook_signature(3, 'hubsync-test-secret', 'POST', '$url', \$b\$$body\$b\$, '$ts')");
	return q1("SELECT hubsync.ingest_webhook('POST', '$url', \$b\$$body\$b\$, '$sig', '$ts')");
}

sub wait_setting
{
	my ($name, $value) = @_;
	# the receiver reads it in the webhook worker: give the reload a moment
	my $ok = $node->poll_query_until('postgres', "SELECT current_setting('$name') = '$value'");
	sleep 1;
	return $ok;
}

my $year_ago = int(time() * 1000) - 365 * 86400 * 1000;

# ---- a contact and a deal that HubSpot has (and changed recently) ----
my $ann = $fake->control('POST', 'ui/contacts', { properties => { email => 'ann@example.com', firstname => 'Ann' } });
my $deal = $fake->control('POST', 'ui/deals', { properties => { dealname => 'Keep me', amount => '10' } });
ok(settled(), 'contact and deal mirrored');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 1, 'contact row there');

# a year-old privacy deletion of that contact, as captured off the wire
# with its v1 signature
my $old_gdpr = $json->encode([{ eventId => 7001, subscriptionId => 31, portalId => 62515, appId => 54321,
	subscriptionType => 'contact.privacyDeletion', objectId => int($ann->{id}), occurredAt => $year_ago,
	attemptNumber => 0, changeSource => 'GDPR' }]);

# ---- v1 only: refused by default ----
is(q1("SHOW hubsync.webhook_legacy_signatures"), 'off', 'legacy signatures are off by default');
my $refused = counter('refused_signature');
my $r = post_v1($old_gdpr);
is($r->{status}, 401, 'a v1-only delivery is refused (401) by default');
like($r->{content}, qr/webhook_legacy_signatures/, 'the answer names the setting');
is(counter('refused_signature') - $refused, 1, 'the refusal is counted');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE subscription_type = 'contact.privacyDeletion'"), 0,
	'nothing stored');
sleep 1;
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 1, 'the contact is still there');

# a v3 delivery (the fake sends v3 and v1 headers) is still accepted
$fake->control('POST', "ui/contacts/$ann->{id}", { properties => { firstname => 'Anna' } });
ok(settled(), 'a v3-signed delivery is applied');
is(q1("SELECT firstname FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 'Anna', 'and changed the row');

# ---- with hubsync.webhook_legacy_signatures on ----
q1("ALTER SYSTEM SET hubsync.webhook_legacy_signatures = on; SELECT pg_reload_conf();");
ok(wait_setting('hubsync.webhook_legacy_signatures', 'on'), 'legacy signatures turned on');
my $fresh = $json->encode([{ eventId => 7002, subscriptionId => 32, portalId => 62515, appId => 54321,
	subscriptionType => 'contact.propertyChange', objectId => int($ann->{id}),
	occurredAt => int(time() * 1000), attemptNumber => 0, propertyName => 'jobtitle',
	propertyValue => 'CTO', changeSource => 'CRM_UI', sourceId => 'userId:1' }]);
$r = post_v1($fresh);
is($r->{status}, 200, 'a v1-only delivery is accepted with the setting on');
ok(settled(), 'and applied');
is(q1("SELECT jobtitle FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 'CTO', 'its change is in the mirror');
my $bad = $fresh;
$bad =~ s/CTO/CEO/;
$r = $http->request('POST', $url, { content => $bad, headers => { 'Content-Type' => 'application/json',
	'X-HubSpot-Signature' => sha256_hex('hubsync-test-secret' . $fresh), 'X-HubSpot-Signature-Version' => 'v1' } });
is($r->{status}, 401, 'a tampered v1 delivery is still refused');

# the year-old privacy deletion replayed: stored, but it deletes nothing
$r = post_v1($old_gdpr);
is($r->{status}, 200, 'the year-old v1 privacy deletion is accepted with the setting on');
ok(settled(), 'and processed');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $ann->{id} AND firstname = 'Anna' AND jobtitle = 'CTO'"),
	1, 'the newer contact row is kept');
is(q1("SELECT state FROM hubsync.inbox WHERE subscription_type = 'contact.privacyDeletion' AND object_id = $ann->{id}"),
	'skipped', 'the stale privacy deletion is skipped');
like(q1("SELECT error FROM hubsync.inbox WHERE subscription_type = 'contact.privacyDeletion' AND object_id = $ann->{id}"),
	qr/^stale privacyDeletion: occurredAt \d+ is older than the record's last known change/, 'with the reason');
cmp_ok(q1("SELECT count(*) FROM hubsync.changes WHERE object_type = 'contacts' AND hs_object_id = $ann->{id}"),
	'>', 0, 'its change feed is kept');

q1("ALTER SYSTEM RESET hubsync.webhook_legacy_signatures; SELECT pg_reload_conf();");
ok(wait_setting('hubsync.webhook_legacy_signatures', 'off'), 'legacy signatures off again');
is(post_v1($fresh)->{status}, 401, 'v1 refused again');

# ---- hubsync.ingest_webhook(): the same rule for a v3-signed old event ----
is(ingest_v3($json->encode([{ eventId => 7003, subscriptionId => 33, portalId => 62515, appId => 54321,
	subscriptionType => 'deal.deletion', objectId => int($deal->{id}), occurredAt => $year_ago,
	attemptNumber => 0, changeSource => 'CRM_UI' }])), 1, 'ingest_webhook stores an old deletion');
is(ingest_v3($json->encode([{ eventId => 7004, subscriptionId => 31, portalId => 62515, appId => 54321,
	subscriptionType => 'contact.privacyDeletion', objectId => int($ann->{id}), occurredAt => $year_ago + 1,
	attemptNumber => 0, changeSource => 'GDPR' }])), 1, 'and an old privacy deletion');
ok(settled(), 'both processed');
is(q1("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = $deal->{id} AND dealname = 'Keep me'"), 1,
	'the deal is kept');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 1, 'the contact is kept');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE (event->>'eventId')::int IN (7003, 7004) AND state = 'skipped' AND error LIKE 'stale %'"),
	2, 'both skipped as stale');

# ---- deletions newer than the record's last change still apply ----
$fake->control('POST', "ui/deals/$deal->{id}/delete", {});
ok(settled(), 'a real deletion delivered');
is(q1("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = $deal->{id}"), 0, 'the deal is removed');
is(ingest_v3($json->encode([{ eventId => 7005, subscriptionId => 31, portalId => 62515, appId => 54321,
	subscriptionType => 'contact.privacyDeletion', objectId => int($ann->{id}), occurredAt => int(time() * 1000) + 1000,
	attemptNumber => 0, changeSource => 'GDPR' }])), 1, 'a current privacy deletion stored');
ok(settled(), 'and processed');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $ann->{id}"), 0, 'the contact is erased');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE event::text LIKE '%ann@%' OR property_value LIKE '%ann@%'"), 0,
	'with no trace of its data in the inbox');

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
$fake->stop;
done_testing();
