# The embedded webhook receiver and hubsync.ingest_webhook(): signatures
# (every vector of ../shared/hubspot/signature-vectors.json), freshness,
# size, method, path and JSON checks; refusals store nothing and are
# counted; duplicates and replays store nothing new.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Encode qw(encode_utf8);
use Digest::SHA qw(hmac_sha256_base64);
use Time::HiRes qw(time);
use lib 'test/perl';
use HubSync::Node;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('receiver', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => 'http://127.0.0.1:1' });
$node->safe_psql('postgres',
	"SELECT hubsync.set_credentials(client_secret => 'hubsync-test-secret')");
my $url = "http://127.0.0.1:$port/hubspot/webhooks";
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->canonical;

ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook worker runs');
ok(wait_listening(), 'receiver listens');

sub wait_listening
{
	for (1 .. 100)
	{
		my $r = $http->request('GET', "http://127.0.0.1:$port/");
		return 1 if $r->{status} != 599;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

sub sign_v3
{
	my ($secret, $method, $uri, $body, $ts) = @_;
	my $s = hmac_sha256_base64("$method$uri$body$ts", $secret);
	$s .= '=' while length($s) % 4;
	return $s;
}

sub post
{
	my (%o) = @_;
	my $body = $o{body};
	my $ts = $o{ts} // int(time() * 1000);
	my $sig = $o{sig} // sign_v3($o{secret} // 'hubsync-test-secret', $o{method} // 'POST',
		$url, $o{signed_body} // $body, $ts);
	my %h = ('Content-Type' => 'application/json');
	$h{'X-HubSpot-Signature-v3'} = $sig unless $o{no_sig};
	$h{'X-HubSpot-Request-Timestamp'} = $ts unless $o{no_ts};
	my $r = $http->request($o{method} // 'POST', $o{url} // $url,
		{ headers => \%h, defined $body ? (content => $body) : () });
	return $r;
}

sub counter
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT value FROM hubsync.webhook_stats WHERE counter = '$name'");
}

sub inbox_count { return $node->safe_psql('postgres', 'SELECT count(*) FROM hubsync.inbox'); }

my $now = int(time() * 1000);
my $event = { eventId => 7, subscriptionId => 100, portalId => 62515, appId => 54321,
	occurredAt => $now, subscriptionType => 'contact.propertyChange', attemptNumber => 0,
	objectId => 424242, propertyName => 'firstname', propertyValue => 'Ann',
	changeSource => 'CRM_UI', sourceId => 'userId:1' };
my $body = $json->encode([$event]);

# the pull worker must not touch these events: nothing to fetch from

my $r = post(body => $body);
is($r->{status}, 200, 'signed delivery answered 200');
like($r->{content}, qr/"stored":1/, 'one event stored');
is(inbox_count(), 1, 'event is in hubsync.inbox');

$r = post(body => $body);
is($r->{status}, 200, 'duplicate delivery answered 200');
is(inbox_count(), 1, 'duplicate stored nothing');
is(counter('events_duplicate'), 1, 'duplicate counted');

# replay of the very same request (same signature and timestamp)
my $ts = int(time() * 1000);
my $replay_body = $json->encode([{ %$event, eventId => 8, occurredAt => $now + 1 }]);
my $sig = sign_v3('hubsync-test-secret', 'POST', $url, $replay_body, $ts);
is(post(body => $replay_body, ts => $ts, sig => $sig)->{status}, 200, 'first of a replayed pair stored');
is(post(body => $replay_body, ts => $ts, sig => $sig)->{status}, 200, 'replay within the window: answered');
is(inbox_count(), 2, 'replay stored nothing new');
my $old = int(time() * 1000) - 6 * 60 * 1000;
is(post(body => $replay_body, ts => $old,
	sig => sign_v3('hubsync-test-secret', 'POST', $url, $replay_body, $old))->{status},
	401, 'replay with a stale timestamp refused');

my $before = inbox_count();
my %base = map { $_ => counter($_) } qw(refused_signature refused_timestamp refused_malformed
  refused_path refused_method refused_too_large);
my $other = $json->encode([{ %$event, eventId => 9, occurredAt => $now + 2 }]);
is(post(body => $other, signed_body => $body)->{status}, 401, 'tampered body refused');
is(post(body => $other, secret => 'not-the-secret')->{status}, 401, 'wrong secret refused');
is(post(body => $other, no_sig => 1)->{status}, 401, 'missing signature refused');
my $future = int(time() * 1000) + 6 * 60 * 1000;
is(post(body => $other, ts => $future)->{status}, 401, 'future timestamp refused');
is(post(body => $other, ts => 'soon')->{status}, 401, 'malformed timestamp refused');
is(post(body => '[{"eventId":1,')->{status}, 400, 'malformed JSON refused');
is(post(body => '{"subscriptionType":"x"}')->{status}, 400, 'non-array JSON refused');
is(post(body => '[{"eventId":1}]')->{status}, 400, 'event without subscriptionType refused');
is(post(body => $other, url => "http://127.0.0.1:$port/elsewhere")->{status}, 404, 'wrong path refused');
is(post(body => undef, method => 'GET')->{status}, 405, 'wrong method refused');
is(post(body => $other, method => 'PUT')->{status}, 405, 'PUT refused');
my $big = '[' . join(',', ($json->encode($event)) x 6000) . ']';
ok(length($big) > 1024 * 1024, 'oversized body is over 1 MiB');
my $st = post(body => $big)->{status};
ok($st == 413 || $st == 599, "oversized body refused ($st)");
is(inbox_count(), $before, 'refusals stored nothing');
is(counter('refused_signature') - $base{refused_signature}, 3, 'signature refusals counted');
is(counter('refused_timestamp') - $base{refused_timestamp}, 2, 'timestamp refusals counted');
is(counter('refused_malformed') - $base{refused_malformed}, 3, 'malformed refusals counted');
is(counter('refused_path') - $base{refused_path}, 1, 'path refusal counted');
is(counter('refused_method') - $base{refused_method}, 2, 'method refusals counted');
is(counter('refused_too_large') - $base{refused_too_large}, 1, 'size refusal counted');
# log_statement = all in test clusters logs our own set_credentials call
my $log = join("\n", grep { !/statement:|STATEMENT:/ } split /\n/, slurp_file($node->logfile));
unlike($log, qr/hubsync-test-secret/, 'the secret never reaches the log');

# SIGHUP: port 0 stops the receiver, a new port rebinds it
$node->append_conf('postgresql.conf', "hubsync.webhook_port = 0\n");
$node->reload;
ok($node->poll_query_until('postgres', 'SELECT true') && wait_closed(), 'port 0 stops the receiver');
sub wait_closed
{
	for (1 .. 100)
	{
		return 1 if $http->request('GET', "http://127.0.0.1:$port/")->{status} == 599;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
$node->append_conf('postgresql.conf', "hubsync.webhook_port = $port\n");
$node->reload;
ok(wait_listening(), 'receiver listens again after reload');

# ---- hubsync.ingest_webhook: the same checks from SQL ----
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT hubsync.ingest_webhook('POST', '$url', '$other', 'AAAA', '$now')");
like($err, qr/webhook refused: signature does not match/, 'ingest_webhook: bad signature refused');
like($err, qr/HINT:/, 'ingest_webhook: error has a hint');
unlike($err, qr/hubsync-test-secret/, 'ingest_webhook: no secret in the error');
my $ts2 = int(time() * 1000);
my $sig2 = sign_v3('hubsync-test-secret', 'POST', $url, $other, $ts2);
is($node->safe_psql('postgres',
	"SELECT hubsync.ingest_webhook('POST', '$url', '$other', '$sig2', '$ts2')"), 1,
	'ingest_webhook stores a signed delivery');
is($node->safe_psql('postgres',
	"SELECT hubsync.ingest_webhook('POST', '$url', '$other', '$sig2', '$ts2')"), 0,
	'ingest_webhook: duplicate stores nothing');

# ---- every signature vector ----
my $vfile = 'test/data/signature-vectors.json';
{
	my $vectors = JSON::PP->new->utf8->decode(slurp_file($vfile))->{vectors};
	ok(@$vectors >= 9, 'signature vectors loaded');
	for my $v (@$vectors)
	{
		my $q = sub { my $s = shift; return 'NULL' unless defined $s; $s =~ s/'/''/g; return "'$s'"; };
		my $received = $v->{uri_as_received} // $v->{uri};
		my $ver = substr($v->{version}, 1);
		is($node->safe_psql('postgres', encode_utf8(
			"SELECT hubsync._webhook_signature($ver, " . $q->($v->{secret}) . ', ' . $q->($v->{method})
			  . ', ' . $q->($received) . ', ' . $q->($v->{body}) . ', ' . $q->($v->{timestamp}) . ')')),
			$v->{expected}, "vector $v->{name}: signature computed");
		next unless $v->{version} eq 'v3';
		my $sql = "BEGIN; SET LOCAL hubsync.webhook_max_age = 0; "
		  . "SELECT hubsync.set_credentials(client_secret => " . $q->($v->{secret}) . "); "
		  . "SELECT hubsync.ingest_webhook(" . join(', ', map { $q->($_) }
			  $v->{method}, $received, $v->{body}, $v->{expected}, $v->{timestamp}) . "); ROLLBACK;";
		$sql = encode_utf8($sql);
		my ($rc, $o, $e) = $node->psql('postgres', $sql);
		unlike($e, qr/signature does not match|timestamp/, "vector $v->{name}: accepted by ingest_webhook's signature check");
		if ($v->{method} eq 'POST' && $v->{body} =~ /^\[/)
		{
			like($o, qr/^\s*1\s*$/m, "vector $v->{name}: its event is stored");
		}
		my $bad = $v->{expected};
		substr($bad, 0, 1) = substr($bad, 0, 1) eq 'A' ? 'B' : 'A';
		$sql =~ s/\Q$v->{expected}\E/$bad/;
		($rc, $o, $e) = $node->psql('postgres', $sql);
		if ($v->{method} eq 'POST')
		{
			like($e, qr/signature does not match/, "vector $v->{name}: altered signature refused");
		}
		if ($v->{uri_as_received})
		{
			my $s2 = $sql;
			$s2 =~ s/\Q$bad\E/$v->{expected_if_not_decoded}/;
			($rc, $o, $e) = $node->psql('postgres', $s2);
			like($e, qr/signature does not match/, "vector $v->{name}: undecoded signature refused");
		}
	}
}

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
done_testing();
