# After a run full of failures (refused tokens, faults, dead letters, bad
# webhooks, OAuth expiry and a refused refresh token), no secret appears in
# the server log, pg_settings, any view or table a non-owner can read, any
# stored error, or any error message a client saw.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my %secret = (
	pat => 'pat-na1-SECRETPAT-5d7e1c0a',
	wrong_pat => 'pat-na1-WRONGPAT-91bb02f3',
	client_secret => 'whsec-SECRETWEBHOOK-77aa',
	oauth_id => 'oauth-client-SECRETID-3c3c',
	oauth_secret => 'oauth-secret-SECRETOAUTH-8e8e',
	refresh => 'refresh-SECRETREFRESH-4f4f',
);
my $fake = HubSync::FakeHubSpot->start('--token', $secret{pat}, '--client-secret', $secret{client_secret});
$fake->configure(oauthClientId => $secret{oauth_id}, oauthClientSecret => $secret{oauth_secret},
	oauthRefreshToken => $secret{refresh});
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('secrets', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => $fake->url, 'log_min_messages' => 'debug1',
		'hubsync.max_attempts' => 1, 'hubsync.retry_window' => 0 });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my @client_errors;
# try -- run SQL that may fail; keep the error a client would see
sub try
{
	my ($q, $role) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $q, stdout => \$out, stderr => \$err,
		$role ? (extra_params => [ '-U', $role ]) : ());
	push @client_errors, $err if $err;
	return $out;
}
# setcred -- set_credentials without the statement text reaching the log
sub setcred { $sql->("SET log_statement = 'none'; SELECT hubsync.set_credentials($_[0])"); }
sub add_contact
{
	return $sql->("INSERT INTO hubspot.contacts (email) VALUES ('$_[0]\@example.com') RETURNING hubsync_id");
}

setcred("access_token => '$secret{pat}', client_secret => '$secret{client_secret}'");
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");

# --- pushes that fail in every way
$fake->control('POST', 'faults', { queue => [
	{ status => 500, match => '/batch/upsert', count => 1 },
	{ malformed => JSON::PP::true, match => '/batch/upsert', count => 1 },
	{ status => 400, match => '/batch/upsert', count => 1,
	  body => { status => 'error', message => 'Property values were not valid', category => 'VALIDATION_ERROR' } } ] });
add_contact("fail$_") for 1 .. 3;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox'), 'failed pushes settled');
cmp_ok($sql->('SELECT count(*) FROM hubsync.dead_letters'), '>=', 1, 'some dead letters');

# a rep edit arrives by webhook (the receiver verifies with the secret)
$fake->control('POST', 'ui/contacts', { properties => { email => 'rep@example.com' } });
$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });

# forged and stale webhooks, and ingest_webhook refusals
my $http = HTTP::Tiny->new(timeout => 5);
for my $h ({ 'X-HubSpot-Signature-v3' => 'forged', 'X-HubSpot-Request-Timestamp' => int(time() * 1000) },
	{ 'X-HubSpot-Signature-v3' => 'forged', 'X-HubSpot-Request-Timestamp' => 1 }, {})
{
	$http->request('POST', "http://127.0.0.1:$port/hubspot/webhooks",
		{ headers => { 'Content-Type' => 'application/json', %$h }, content => '[{"eventId":1}]' });
}
try("SELECT hubsync.ingest_webhook('POST', 'http://x/hubspot/webhooks', '[]', 'forged', "
	  . int(time() * 1000) . "::text)");
try("SELECT hubsync.ingest_webhook('POST', 'http://x/hubspot/webhooks', '[]', 'forged', '1')");

# a wrong private-app token: 401, refused
setcred("access_token => '$secret{wrong_pat}'");
add_contact('refused');
ok($node->poll_query_until('postgres', "SELECT auth = 'refused' FROM hubsync.credentials_status"),
	'wrong token refused');

# OAuth: tokens, an early expiry, a refused refresh
setcred("access_token => '', oauth_client_id => '$secret{oauth_id}', "
	  . "oauth_client_secret => '$secret{oauth_secret}', oauth_refresh_token => '$secret{refresh}'");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox'), 'OAuth push done');
my @access = map { $_ } ($sql->("SELECT oauth_access_token FROM hubsync._credentials"));
$fake->control('POST', 'oauth/expire', {});
add_contact('expired');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox'), 'pushed after expiry');
push @access, $sql->("SELECT oauth_access_token FROM hubsync._credentials");
$fake->control('POST', 'oauth/revoke', {});
$fake->control('POST', 'oauth/expire', {});
add_contact('paused');
ok($node->poll_query_until('postgres', "SELECT auth = 'refresh_failed' FROM hubsync.credentials_status"),
	'refresh refused');
like($access[0], qr/^CJT/, 'an OAuth access token was issued');
$secret{"access$_"} = $access[$_] for 0 .. $#access;

# non-owners poking at secrets
$sql->('CREATE ROLE snoop LOGIN');
try('SELECT * FROM hubsync._credentials', 'snoop');
try("SELECT hubsync.set_credentials(access_token => 'x')", 'snoop');
try('SELECT * FROM hubsync.credentials_status', 'snoop');

# an enrichment provider's API key, used against a provider that is down
$secret{enrich_key} = 'sk-enrich-SECRETENRICH-5c5c';
$sql->("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping)
	VALUES ('downco', 'http://127.0.0.1:9/enrich', '{\"jobtitle\": \"\$.title\"}')");
$sql->("SET log_statement = 'none'; SELECT hubsync.set_enrichment_key('downco', '$secret{enrich_key}')");
$sql->("INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider)
	VALUES ('everyone', 'contacts', 'true', 'realtime', 'downco')");
$sql->("INSERT INTO hubspot.contacts (email) VALUES ('enrich-leak\@example.com')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubsync.enrichment_jobs WHERE last_error IS NOT NULL"),
	'a call to the enrichment provider failed, with its key');
try('SELECT hubsync.set_enrichment_key(\'downco\', \'x\')', 'snoop');

# --- now search everywhere
my %where;
$where{'server log'} = slurp_file($node->logfile);
$where{'pg_settings'} = $sql->("SELECT string_agg(name || '=' || coalesce(setting, '') || coalesce(reset_val, '')
	|| coalesce(boot_val, ''), E'\\n') FROM pg_settings");
$where{'postgresql.auto.conf'} = $sql->("SELECT string_agg(setting, ',') FROM pg_file_settings");
# every view and every table of the extension except the two secrets tables
my @rels = split /\n/, $sql->("SELECT c.oid::regclass FROM pg_class c
	WHERE c.relnamespace IN ('hubsync'::regnamespace, 'hubspot'::regnamespace)
	  AND c.relkind IN ('r', 'v', 'm') AND c.relname NOT IN ('_credentials', '_enrichment_keys') ORDER BY 1");
cmp_ok(scalar @rels, '>=', 20, scalar(@rels) . ' views and tables to search');
for my $rel (@rels)
{
	$where{$rel} = $sql->("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM $rel t");
}
$where{'functions returning sets'} = $sql->("SELECT string_agg(t::text, ',') FROM hubsync.worker_status() t")
  . $sql->("SELECT string_agg(t::text, ',') FROM hubsync.webhook_counters() t");
$where{'client error messages'} = join("\n", @client_errors);
cmp_ok(scalar @client_errors, '>=', 4, 'clients saw errors');
$where{'pg_stat_activity'} = $sql->("SELECT string_agg(coalesce(query, '') || coalesce(application_name, ''), E'\\n') FROM pg_stat_activity");

my @found;
for my $w (sort keys %where)
{
	for my $s (sort keys %secret)
	{
		push @found, "$s in $w" if index($where{$w}, $secret{$s}) >= 0;
	}
}
is(join(', ', @found), '', 'no secret anywhere (' . scalar(keys %secret) . ' secrets, '
	  . scalar(keys %where) . ' places)');
# the check can fail: the secrets table does hold them
ok(index($sql->('SELECT t::text FROM hubsync._credentials t'), $secret{refresh}) >= 0,
	'(the owner-only table does hold the refresh token)');

done_testing();
