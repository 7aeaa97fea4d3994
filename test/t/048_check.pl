# hubsync.check(): verifies the set-up (credentials, HubSpot reachable and
# the token accepted, read access per tracked type, the hubsync_id
# property, webhooks or polling only, workers) with GETs only: nothing is
# created in HubSpot.  A bad token fails the token check with a hint.
# Owner only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('check');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
ok(HubSync::Node::wait_for_workers($node), 'workers running');

sub last_seq { return $fake->control('GET', 'requests')->{lastSeq}; }
sub since { return @{ $fake->control('GET', "requests?since=$_[0]")->{requests} }; }
sub rows
{
	return { map { my @f = split /\|/, $_, 4; ($f[0] => { ok => $f[1], detail => $f[2], hint => $f[3] }) }
		split /\n/, $sql->("SELECT item, ok, detail, coalesce(hint, '') FROM hubsync.check()") };
}

# ---- good credentials: every row ok, only GETs, nothing created ----
my $stats = $fake->control('GET', 'stats');
my $seq = last_seq();
my $r = rows();
is(join(',', grep { $r->{$_}{ok} ne 't' } sort keys %$r), '', 'all checks ok with good credentials');
ok(exists $r->{$_}, "a row for $_") for ('credentials', 'token', 'read contacts', 'property contacts.hubsync_id', 'webhooks', 'workers');
is($r->{'read deals'}{detail}, 'readable', 'each tracked type is read');
like($r->{webhooks}{detail}, qr/polling only/, 'no receiver: polling only, said so');
is($r->{workers}{detail}, 'all running', 'workers running');
my @mine = grep { $_->{path} =~ m{^/crm/v3/(objects|properties)/} && $_->{path} !~ m{/search$} } since($seq);
ok(scalar(@mine) >= 4, 'check read HubSpot (' . scalar(@mine) . ' requests)');
is(join(',', map { "$_->{method} $_->{path}" } grep { $_->{method} ne 'GET' } @mine), '',
	'only GETs: nothing written to HubSpot');
ok(scalar(grep { $_->{path} =~ m{^/crm/v3/properties/[^/]+/hubsync_id$} } @mine) >= 1,
	'the hubsync_id property is looked up, not created');
is_deeply($fake->control('GET', 'stats'), $stats, 'the fake holds the same records as before');

# ---- a bad token: the token check fails with a hint ----
$sql->("SET log_statement = 'none'; SELECT hubsync.set_credentials(access_token => 'wrong-token')");
$r = rows();
is($r->{token}{ok}, 'f', 'bad token: token check fails');
like($r->{token}{detail}, qr/refused the token \(HTTP 401\)/, 'bad token: HubSpot\'s 401 named');
like($r->{token}{hint}, qr/set_credentials\(access_token/, 'bad token: the hint says what to do');
is($r->{'read contacts'}{ok} . '|' . $r->{'read contacts'}{detail}, 'f|not checked: the token check failed',
	'bad token: the type checks are skipped');
is($r->{credentials}{ok}, 't', 'bad token: credentials are set though');
unlike($sql->("SELECT string_agg(detail || coalesce(hint, ''), ' ') FROM hubsync.check()"), qr/wrong-token/,
	'bad token: the token is not shown');

# ---- no credentials ----
$sql->("SELECT hubsync.set_credentials(access_token => '')");
$r = rows();
is($r->{credentials}{ok} . '|' . $r->{token}{ok}, 'f|f', 'no credentials: credentials and token fail');
like($r->{credentials}{hint}, qr/set_credentials/, 'no credentials: the hint says what to do');
$sql->("SET log_statement = 'none'; SELECT hubsync.set_credentials(access_token => 'test-token')");
is($sql->("SELECT bool_and(ok) FROM hubsync.check()"), 't', 'good again with the right token');

# ---- the webhook receiver: client secret and public URL ----
my $port = PostgreSQL::Test::Cluster::get_free_port();
$node->append_conf('postgresql.conf', "hubsync.webhook_port = $port\n");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT current_setting('hubsync.webhook_port') = '$port'"), 'receiver on');
$r = rows();
is($r->{webhooks}{ok}, 'f', 'receiver without a public URL: not ok');
like($r->{webhooks}{hint}, qr/hubsync\.webhook_public_url/, 'receiver without a public URL: the hint names the setting');
$node->append_conf('postgresql.conf', "hubsync.webhook_public_url = 'https://example.com/hubspot/webhooks'\n");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT ok FROM hubsync.check() WHERE item = 'webhooks'"),
	'receiver with client secret and public URL: ok');
$sql->("SELECT hubsync.set_credentials(client_secret => '')");
$r = rows();
is($r->{webhooks}{ok}, 'f', 'receiver without a client secret: not ok');
like($r->{webhooks}{hint}, qr/client_secret/, 'receiver without a client secret: the hint says what to do');

# ---- owner only ----
$sql->("CREATE ROLE app_user LOGIN");
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE app_user; SELECT * FROM hubsync.check()");
like($err, qr/permission denied for function check/, 'not executable by PUBLIC');

$node->stop;
$fake->stop;
done_testing();
