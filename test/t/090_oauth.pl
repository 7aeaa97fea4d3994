# OAuth: the access token comes from HubSpot's token endpoint, is refreshed
# before it expires and once after EXPIRED_AUTHENTICATION; a refused refresh
# token pauses sync with a clear status (and asks nothing more); a new
# credential works without a restart; credentials_status shows no value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('oauth', no_credentials => 1);
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $n = 0;

# set_credentials without the statement reaching the log (see docs/security.md, Secrets)
sub setcred
{
	$node->safe_psql('postgres', "SET log_statement = 'none'; SELECT hubsync.set_credentials($_[0])");
}

# requests to the fake since a sequence number, by kind
sub since
{
	my ($seq, $re) = @_;
	return grep { $_->{path} =~ $re } @{ $fake->control('GET', "requests?since=$seq")->{requests} };
}
sub last_seq { return $fake->control('GET', 'requests')->{lastSeq}; }
sub add_contact
{
	$n++;
	return $sql->("INSERT INTO hubspot.contacts (email) VALUES ('oauth$n\@example.com') RETURNING hubsync_id");
}
sub synced
{
	my ($id) = @_;
	return $node->poll_query_until('postgres',
		"SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'");
}

# 1. OAuth credentials only: the first push fetches an access token
my $seq = last_seq();
setcred("oauth_client_id => 'hubsync-client-id',
	oauth_client_secret => 'hubsync-oauth-secret', oauth_refresh_token => 'hubsync-refresh-token'");
my $c1 = add_contact();
ok(synced($c1), 'a change pushed with an OAuth access token');
my @tok = since($seq, qr{^/oauth/v1/token$});
is(scalar @tok, 1, 'one token request');
is($tok[0]{status}, 200, 'token endpoint answered 200');
is(scalar(grep { $_->{status} == 401 } since($seq, qr{/crm/})), 0, 'no 401 on the way');
like($sql->("SELECT oauth_access_token FROM hubsync._credentials"), qr/^CJT/, 'access token stored');
is($sql->("SELECT auth || ' ' || (oauth_access_token_expires_at BETWEEN now() + interval '1700 s' AND now() + interval '1801 s')
	|| ' ' || (oauth_refreshed_at IS NOT NULL) || ' ' || coalesce(oauth_refresh_error, '-')
	FROM hubsync.credentials_status"), 'ok true true -', 'credentials_status: state, expiry, refresh time');
is($sql->("SELECT access_token::text || client_secret::text || oauth_client_id::text
	|| oauth_client_secret::text || oauth_refresh_token::text FROM hubsync.credentials_status"),
	'falsefalsetruetruetrue', 'credentials_status says which are set');
my $status_text = $sql->("SELECT row_to_json(c)::text FROM hubsync.credentials_status c");
unlike($status_text, qr/hubsync-refresh-token|hubsync-oauth-secret|hubsync-client-id|CJT/,
	'credentials_status shows no value');

# 2. refreshed before it expires: a 4-second token, a push after it ran out
$fake->configure(oauthExpiresIn => 4);
setcred("oauth_refresh_token => 'hubsync-refresh-token'");
my $c2 = add_contact();
ok(synced($c2), 'pushed with a short-lived token');
# (from here: another worker, say the poller, may refresh in the meantime)
$seq = last_seq();
sleep 5;
my $c3 = add_contact();
ok(synced($c3), 'pushed after the first token ran out');
is(scalar(grep { $_->{status} == 401 } since($seq, qr{/crm/})), 0,
	'no request was sent with an expired token');
ok(scalar(since($seq, qr{^/oauth/v1/token$})) >= 1, 'the token was refreshed before use');

# 3. EXPIRED_AUTHENTICATION: refresh once, retry, done
$fake->configure(oauthExpiresIn => 1800);
setcred("oauth_refresh_token => 'hubsync-refresh-token'");
ok(synced(add_contact()), 'pushed with a long-lived token');
$fake->control('POST', 'oauth/expire', {});
$seq = last_seq();
my $c4 = add_contact();
ok(synced($c4), 'pushed after HubSpot expired the token early');
my @expired = grep { $_->{status} == 401 } since($seq, qr{/crm/});
is(scalar @expired, 1, 'one 401 EXPIRED_AUTHENTICATION');
is(scalar(since($seq, qr{^/oauth/v1/token$})), 1, 'one refresh after it');
is($sql->("SELECT auth FROM hubsync.credentials_status"), 'ok', 'auth ok again');

# 4. a refused refresh token pauses sync, clearly, without hammering
$fake->control('POST', 'oauth/revoke', {});
$fake->control('POST', 'oauth/expire', {});
$seq = last_seq();
my $c5 = add_contact();
ok($node->poll_query_until('postgres', "SELECT auth = 'refresh_failed' FROM hubsync.credentials_status"),
	'credentials_status: refresh_failed');
like($sql->("SELECT oauth_refresh_error FROM hubsync.credentials_status"),
	qr/^HTTP 400 invalid_grant: missing or unknown refresh token$/,
	'the refusal in HubSpot\'s words (RFC 6749 error and error_description of the dated endpoint)');
is($sql->("SELECT DISTINCT auth FROM hubsync.status"), 'refresh_failed', 'hubsync.status says so too');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.alerts WHERE alert = 'auth_refresh_failed'"),
	'an auth_refresh_failed alert');
like($sql->("SELECT payload ->> 'hint' FROM hubsync.alerts WHERE alert = 'auth_refresh_failed'"),
	qr/oauth_refresh_token/, 'auth_refresh_failed: the payload says what to do');
unlike($sql->("SELECT payload::text FROM hubsync.alerts WHERE alert = 'auth_refresh_failed'"),
	qr/invalid_grant|BAD_REFRESH_TOKEN|hubsync-refresh-token|client-secret/, 'auth_refresh_failed: neither HubSpot\'s words nor a secret in the payload');
sleep 4;
is(scalar(since($seq, qr{^/oauth/v1/token$})), 1, 'the token endpoint was asked once, not hammered');
is($sql->("SELECT count(*) FROM hubsync.outbox o JOIN hubspot.contacts c USING (hubsync_id)
	WHERE c.hubsync_id = '$c5'"), '1', 'the change waits in the outbox');
ok($node->log_contains("refused hubsync's OAuth refresh token"), 'a WARNING in the log');

# ... across a restart too
$node->restart;
HubSync::Node::wait_for_workers($node);
sleep 3;
is(scalar(since($seq, qr{^/oauth/v1/token$})), 1, 'no refresh attempt after a restart');
is($sql->("SELECT auth FROM hubsync.credentials_status"), 'refresh_failed', 'still refresh_failed');

# 5. a new refresh token takes effect at once, no restart
$fake->configure(oauthRefreshToken => 'rt-second');
setcred("oauth_refresh_token => 'rt-second'");
ok(synced($c5), 'the waiting change left with the new refresh token');
is($sql->("SELECT auth || ' ' || coalesce(oauth_refresh_error, '-') FROM hubsync.credentials_status"),
	'ok -', 'auth ok, no refresh error');

# 6. a rotated refresh token is stored and used next time
$fake->configure(oauthRotateRefreshToken => JSON::PP::true());
$fake->control('POST', 'oauth/expire', {});
ok(synced(add_contact()), 'pushed after a rotating refresh');
my $rt = $sql->("SELECT oauth_refresh_token FROM hubsync._credentials");
isnt($rt, 'rt-second', 'the rotated refresh token was stored');
$fake->control('POST', 'oauth/expire', {});
ok(synced(add_contact()), 'and the rotated one works for the next refresh');

# 7. a passing failure of the token endpoint is retried with a delay
$fake->control('POST', 'faults', { queue => [ { status => 500, match => '/oauth/', count => 2 } ] });
$fake->control('POST', 'oauth/expire', {});
$seq = last_seq();
my $c8 = add_contact();
ok(synced($c8), 'pushed once the token endpoint recovered');
my @t = since($seq, qr{^/oauth/v1/token$});
is(join(',', map { $_->{status} } @t), '500,500,200', 'two failures, then a refresh');
ok($t[1]{startMs} - $t[0]{endMs} >= 1500, 'the retry waited');
is($sql->("SELECT auth FROM hubsync.credentials_status"), 'ok', 'a passing failure does not pause sync');

# 8. client credentials: a client id and secret, no refresh token
$fake->configure(oauthRotateRefreshToken => JSON::PP::false(), oauthExpiresIn => 4);
$seq = last_seq();
setcred("oauth_refresh_token => ''");
my $c9 = add_contact();
ok(synced($c9), 'client credentials: a change pushed with the token they brought');
@t = since($seq, qr{^/oauth/v1/token$});
ok(@t >= 1 && $t[0]{status} == 200 && $t[0]{rawPath} eq '/oauth/2026-09/token',
	'client credentials: the dated token endpoint answered 200');
is($sql->("SELECT auth || ' ' || oauth_refresh_token::text || ' ' || (oauth_access_token_expires_at > now())
	FROM hubsync.credentials_status"), 'ok false true',
	'client credentials: no refresh token, the access token and its expiry stored');
like($sql->("SELECT detail FROM hubsync.check() WHERE item = 'credentials'"), qr/client credentials/,
	'check() names the client credentials grant');
# refreshed before it expires, like a refreshed token
$seq = last_seq();
sleep 5;
my $c10 = add_contact();
ok(synced($c10), 'client credentials: pushed after the first token ran out');
is(scalar(grep { $_->{status} == 401 } since($seq, qr{/crm/})), 0,
	'client credentials: no request was sent with an expired token');
ok(scalar(since($seq, qr{^/oauth/v1/token$})) >= 1, 'client credentials: a new token before use');

# a refusal (invalid_client): paused, with a clear status and alert
$fake->configure(oauthClientSecret => 'other-secret', oauthExpiresIn => 1800);
$sql->("DELETE FROM hubsync.alerts WHERE alert = 'auth_refresh_failed'");   # sent in 4.
$fake->control('POST', 'oauth/expire', {});
my $c11 = add_contact();
ok($node->poll_query_until('postgres', "SELECT auth = 'refresh_failed' FROM hubsync.credentials_status"),
	'client credentials refused: refresh_failed');
like($sql->("SELECT oauth_refresh_error FROM hubsync.credentials_status"),
	qr/^HTTP 400 invalid_client: missing or invalid client secret$/, 'client credentials refused: invalid_client, in HubSpot\'s words');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.alerts
	WHERE alert = 'auth_refresh_failed' AND payload ->> 'hint' LIKE '%oauth_client_secret%'"),
	'client credentials refused: the alert says to check the client id and secret');
ok($node->log_contains("refused hubsync's OAuth client credentials"), 'client credentials refused: a WARNING');
setcred("oauth_client_secret => 'other-secret'");
ok(synced($c11), 'client credentials: a corrected secret resumes sync at once');

# no secret reached the server log
my $log = slurp_file($node->logfile);
unlike($log, qr/hubsync-refresh-token|rt-second|hubsync-oauth-secret|other-secret|\Q$rt\E|CJT[0-9a-f]{8}/,
	'no secret in the server log');

done_testing();
