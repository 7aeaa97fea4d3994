# Tokens and keys never travel in clear text to another machine: plain
# http:// is refused for hubsync.api_base_url and enrichment provider
# endpoints unless the host is loopback or hubsync.allow_insecure_http is
# on; checked when set (GUC check, provider trigger) and again at each
# request.  0.0.0.0 reaches this machine on Linux but is not a loopback
# name, so a request that slips through shows up in the fakes' logs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;
use HubSync::FakeEnrichment;

my ($node, $fake) = HubSync::Node::with_fake('cleartext');
my $prov = HubSync::FakeEnrichment->start;
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub try { my ($ret, $out, $err) = $node->psql('postgres', $_[0]); return $err; }
my $port = $fake->port;
my $eport = $prov->{port};

# ---- the legitimate path: loopback http:// works ----
my $id = q1("INSERT INTO hubspot.contacts (email) VALUES ('a\@clear.test') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
	'pushed to a loopback http:// API');

# ---- hubsync.api_base_url: checked when set ----
for my $bad ('http://api.example.com', 'http://203.0.113.5:8080/', 'http://127.0.0.1@evil.example/',
	'http://127.0.0.1.evil.example/', 'http://localhost.evil.example', "http://0.0.0.0:$port")
{
	like(try("ALTER SYSTEM SET hubsync.api_base_url = '$bad'"),
		qr/hubsync.api_base_url "\Q$bad\E" would send the HubSpot access token in clear text.*HINT:  Use an https:\/\/ URL, or set hubsync.allow_insecure_http/s,
		"api_base_url $bad is refused, with a hint");
}
for my $good ('https://api.hubapi.com', 'http://localhost:9/', 'http://127.0.0.2:9', 'http://[::1]:9/')
{
	is(try("ALTER SYSTEM SET hubsync.api_base_url = '$good'"), '', "api_base_url $good is accepted");
}
q1('ALTER SYSTEM RESET hubsync.api_base_url');
like(try("SET hubsync.allow_insecure_http = on"), qr/cannot be changed now/, 'allow_insecure_http is not a session setting');
like(try("CREATE ROLE plain LOGIN; SET ROLE plain; ALTER SYSTEM SET hubsync.allow_insecure_http = on"),
	qr/must be superuser|permission denied/, 'nor one an ordinary role can change');

# ---- enrichment provider endpoints: checked on insert and update ----
like(try("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping) VALUES ('p', 'http://enrich.example.com/x', '{}')"),
	qr/enrichment provider endpoint "http:\/\/enrich.example.com\/x" would send the API key in clear text.*HINT:  Use an https:\/\/ endpoint/s,
	'an http:// provider on another host is refused, with a hint');
is(try("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping) VALUES ('s', 'https://enrich.example.com/x', '{}')"),
	'', 'an https:// provider is accepted');
is(try("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping) VALUES ('l', 'http://127.0.0.1:$eport/enrich', '{\"jobtitle\": \"\$.person.title\"}')"),
	'', 'a loopback http:// provider is accepted');
like(try("UPDATE hubsync.enrichment_providers SET endpoint = 'http://0.0.0.0:$eport/enrich' WHERE name = 'l'"),
	qr/would send the API key in clear text/, 'an update to an http:// endpoint on another host is refused');

# ---- allow_insecure_http = on: the operator's choice ----
q1('ALTER SYSTEM SET hubsync.allow_insecure_http = on');
q1('SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT current_setting('hubsync.allow_insecure_http') = 'on'"), 'allowed');
is(try("ALTER SYSTEM SET hubsync.api_base_url = 'http://0.0.0.0:$port'"), '', 'then a remote http:// API is accepted');
q1('SELECT pg_reload_conf()');
is(try("UPDATE hubsync.enrichment_providers SET endpoint = 'http://0.0.0.0:$eport/enrich' WHERE name = 'l'"), '',
	'and a remote http:// provider');
ok($node->poll_query_until('postgres', "SELECT current_setting('hubsync.api_base_url') = 'http://0.0.0.0:$port'"),
	'the API is now reached through 0.0.0.0');
$id = q1("INSERT INTO hubspot.contacts (email) VALUES ('b\@clear.test') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
	'and pushes go there');

# ---- allowed no more: requests to the configured http:// URLs are refused ----
q1('ALTER SYSTEM SET hubsync.allow_insecure_http = off');
q1('SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT current_setting('hubsync.allow_insecure_http') = 'off'"), 'disallowed again');
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'hubsync push'"),
	'the push worker runs');
my $seq = $fake->control('GET', 'requests?since=0')->{lastSeq};
$id = q1("INSERT INTO hubspot.contacts (email) VALUES ('c\@clear.test') RETURNING hubsync_id");
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE '%refused to send over plain http://%' FROM hubsync.outbox WHERE hubsync_id = '$id'"),
	'a push to the remote http:// API is refused at request time');
is(scalar(grep { $_->{path} =~ m{/crm/} } @{ $fake->control('GET', "requests?since=$seq")->{requests} }), 0,
	'nothing reached the API');

q1("INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider) VALUES ('r', 'contacts', 'email LIKE ''e%''', 'realtime', 'l')");
q1("SELECT hubsync.set_enrichment_key('l', 'sk-cleartext-key')");
my $calls = $prov->control('GET', 'stats')->{requests};
q1("INSERT INTO hubspot.contacts (email) VALUES ('e\@clear.test')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.enrichment_jobs WHERE last_error LIKE '%refused to send over plain http://%'"),
	'an enrichment call to the remote http:// provider is refused at request time');
is($prov->control('GET', 'stats')->{requests}, $calls, 'the provider got no call (no key sent)');

# ---- back to loopback: the queued push goes out ----
q1('ALTER SYSTEM RESET hubsync.api_base_url');
q1("ALTER SYSTEM SET hubsync.api_base_url = 'http://127.0.0.1:$port'");
q1('SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
	'once the API is loopback again, the push goes out');

done_testing();
