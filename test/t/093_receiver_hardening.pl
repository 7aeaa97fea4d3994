# Receiver hardening: header size, connection count, slow clients, TLS,
# and a bounded loopback flood of invalid deliveries during which valid
# deliveries keep being answered (and stored once).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_base64);
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('hardening', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => 'http://127.0.0.1:1',
		'hubsync.webhook_timeout' => '2s', 'hubsync.webhook_max_connections' => 8,
		'hubsync.webhook_max_connections_per_address' => 4 });
$node->safe_psql('postgres', "SET log_statement = 'none';
	SELECT hubsync.set_credentials(client_secret => 'hubsync-test-secret')");
my $url = "http://127.0.0.1:$port/hubspot/webhooks";
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->canonical;
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

sub wait_listening
{
	my ($scheme) = @_;
	for (1 .. 150)
	{
		return 1 if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
		sleep 0.1;
	}
	return 0;
}
sub sign_v3
{
	my ($method, $uri, $body, $ts) = @_;
	my $s = hmac_sha256_base64("$method$uri$body$ts", 'hubsync-test-secret');
	$s .= '=' while length($s) % 4;
	return $s;
}
my $event_id = 1000;
sub delivery
{
	my ($target) = @_;
	$event_id++;
	my $body = $json->encode([{ eventId => $event_id, subscriptionId => 1, portalId => 62515,
		appId => 54321, occurredAt => int(time() * 1000), subscriptionType => 'contact.propertyChange',
		attemptNumber => 0, objectId => 500000 + $event_id, propertyName => 'firstname',
		propertyValue => "v$event_id", changeSource => 'CRM_UI', sourceId => 'userId:1' }]);
	my $ts = int(time() * 1000);
	return ($body, { 'Content-Type' => 'application/json',
		'X-HubSpot-Signature-v3' => sign_v3('POST', $target // $url, $body, $ts),
		'X-HubSpot-Request-Timestamp' => $ts });
}
sub post_valid
{
	my ($body, $h) = delivery();
	return $http->request('POST', $url, { headers => $h, content => $body });
}
sub inbox_count { return $sql->('SELECT count(*) FROM hubsync.inbox'); }
sub counter
{
	return $sql->("SELECT value FROM hubsync.webhook_stats WHERE counter = '$_[0]'");
}
# raw -- send bytes on a new connection, return what came back (or '')
sub raw
{
	my ($bytes, $wait) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or return undef;
	print $s $bytes;
	my $out = '';
	my $deadline = time() + ($wait // 5);
	$s->blocking(0);
	while (time() < $deadline)
	{
		my $n = sysread($s, my $buf, 65536);
		last if defined $n && $n == 0;
		$out .= $buf if $n;
		sleep 0.05 unless $n;
	}
	close $s;
	return $out;
}

ok(wait_listening(), 'receiver listens');
is(post_valid()->{status}, 200, 'a valid delivery is answered 200');

# --- header size
my ($body, $h) = delivery();
my $req_head = "POST /hubspot/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
  . "X-HubSpot-Signature-v3: $h->{'X-HubSpot-Signature-v3'}\r\n"
  . "X-HubSpot-Request-Timestamp: $h->{'X-HubSpot-Request-Timestamp'}\r\n";
my $before = inbox_count();
my $answer = raw($req_head . "X-Padding: " . ('a' x 65536) . "\r\nContent-Length: " . length($body)
	  . "\r\nConnection: close\r\n\r\n" . $body);
unlike($answer // '', qr{^HTTP/1\.[01] 200}, 'a 64 kB header is not accepted');
like($answer // '', qr{^(HTTP/1\.[01] 4\d\d|)}, 'it is refused or cut off');
is(inbox_count(), $before, 'and stores nothing');
$answer = raw($req_head . "X-Padding: " . ('a' x 4000) . "\r\nContent-Length: " . length($body)
	  . "\r\nConnection: close\r\n\r\n" . $body);
like($answer, qr{^HTTP/1\.[01] 200}, 'a 4 kB header is fine');

# --- slow clients: a body trickled past hubsync.webhook_timeout is cut off
($body, $h) = delivery();
$before = inbox_count();
my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5);
print $slow "POST /hubspot/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
  . "X-HubSpot-Signature-v3: $h->{'X-HubSpot-Signature-v3'}\r\n"
  . "X-HubSpot-Request-Timestamp: $h->{'X-HubSpot-Request-Timestamp'}\r\n"
  . "Content-Length: " . length($body) . "\r\n\r\n";
my $t0 = time();
my $cut = 0;
local $SIG{PIPE} = 'IGNORE';
for my $ch (split //, $body)
{
	if (!defined syswrite($slow, $ch)) { $cut = 1; last; }
	sleep 0.3;
	last if time() - $t0 > 15;
}
my $got = '';
$slow->blocking(1);
sysread($slow, $got, 4096);
close $slow;
ok(($cut || $got !~ /^HTTP\/1\.[01] 200/) && time() - $t0 < 15, 'a client trickling its body is cut off')
  or diag("cut=$cut got=$got after " . (time() - $t0));
is(inbox_count(), $before, 'the trickled delivery stored nothing');

# --- connection limit: idle connections beyond it are not served, and the
# idle ones are closed after the timeout
my @idle = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) } 1 .. 4;
sleep 0.5;
my $r = HTTP::Tiny->new(timeout => 1)->request('POST', $url, { headers => $h, content => $body });
isnt($r->{status}, 200, 'over the per-address limit (webhook_max_connections_per_address): not served');
my $closed = 0;
for my $s (@idle)
{
	$s->blocking(1);
	my $n = sysread($s, my $buf, 10);
	$closed++ if defined $n && $n == 0 || !defined $n;
}
is($closed, 4, 'idle connections were closed after hubsync.webhook_timeout');
# (the server counts a closed connection out of the per-address limit a
# moment after the client sees it close: a sender retries, as HubSpot does)
my $served;
for (1 .. 20)
{
	$served = post_valid()->{status};
	last if $served == 200;
	sleep 0.1;
}
is($served, 200, 'served again once they are gone');

# --- flood: invalid deliveries from several processes for a bounded time
# while valid ones keep being answered (all from 127.0.0.1 here, so the
# per-address limit is lifted; 099_slow_headers.pl floods from several)
$sql->("ALTER SYSTEM SET hubsync.webhook_max_connections = 64;
	ALTER SYSTEM SET hubsync.webhook_max_connections_per_address = 64;
	ALTER SYSTEM SET hubsync.webhook_timeout = '10s'; SELECT pg_reload_conf();");
sleep 1;
ok(wait_listening(), 'receiver restarted with new limits');
ok($node->poll_query_until('postgres', 'SELECT true') && post_valid()->{status} == 200, 'valid after reload');
my $refused_before = counter('refused_signature');
my $flood_until = time() + 6;
my @kids;
for my $k (1 .. 6)
{
	my $pid = fork();
	if ($pid == 0)
	{
		my $c = HTTP::Tiny->new(timeout => 5, keep_alive => ($k % 2));
		my $junk = '[' . join(',', map { '{"eventId":' . $_ . '}' } 1 .. 50) . ']';
		while (time() < $flood_until)
		{
			$c->request('POST', $url, { headers => { 'Content-Type' => 'application/json',
				'X-HubSpot-Signature-v3' => 'AAAA' . $k, 'X-HubSpot-Request-Timestamp' => int(time() * 1000) },
				content => $junk });
			$c->request('GET', "http://127.0.0.1:$port/other") if $k == 1;
		}
		exit 0;
	}
	push @kids, $pid;
}
# two slow-loris processes, four connections each, a byte per second
for my $k (1 .. 2)
{
	my $pid = fork();
	if ($pid == 0)
	{
		my @s = grep { defined } map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 2) } 1 .. 4;
		my $line = "POST /hubspot/webhooks HTTP/1.1\r\nHost: x\r\n";
		my $i = 0;
		while (time() < $flood_until)
		{
			syswrite($_, substr($line, $i % length($line), 1)) for @s;
			$i++;
			sleep 1;
		}
		exit 0;
	}
	push @kids, $pid;
}
my ($answered, $tries, $slowest) = (0, 0, 0);
my $before_valid = inbox_count();
sleep 0.5;
while (time() < $flood_until - 0.5)
{
	my $t = time();
	my $res = post_valid();
	my $took = time() - $t;
	$slowest = $took if $took > $slowest;
	$tries++;
	$answered++ if $res->{status} == 200;
	sleep 0.2;
}
kill 'TERM', @kids;
waitpid($_, 0) for @kids;
cmp_ok($tries, '>=', 5, "valid deliveries sent during the flood ($tries)");
is($answered, $tries, 'every valid delivery was answered 200 during the flood');
cmp_ok($slowest, '<', 5, sprintf('each within HubSpot\'s 5 s timeout (slowest %.2f s)', $slowest));
is(inbox_count() - $before_valid, $tries, 'each stored exactly once');
my $refused = counter('refused_signature') - $refused_before;
cmp_ok($refused, '>', 50, "the flood really happened ($refused refused)");

# --- TLS: a self-signed certificate made here
my $dir = PostgreSQL::Test::Utils::tempdir();
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
	'-keyout', "$dir/key.pem", '-out', "$dir/cert.pem") == 0 or die 'openssl failed';
chmod 0600, "$dir/key.pem";
my $https = "https://127.0.0.1:$port/hubspot/webhooks";
$sql->("ALTER SYSTEM SET hubsync.webhook_tls_cert_file = '$dir/cert.pem';
	ALTER SYSTEM SET hubsync.webhook_tls_key_file = '$dir/key.pem';
	ALTER SYSTEM SET hubsync.webhook_public_url = '$https'; SELECT pg_reload_conf();");
ok($node->poll_query_until('postgres', "SELECT true") && wait_for_log('listening on .* \(TLS\)'),
	'receiver restarted with TLS');
($body, $h) = delivery($https);
$before = inbox_count();
my @hdr = map { ('-H', "$_: $h->{$_}") } sort keys %$h;
my $out = `curl -s -o /dev/null -w '%{http_code}' --cacert $dir/cert.pem @{[ join ' ', map { "'$_'" } @hdr ]} --data-binary '$body' '$https'`;
is($out, '200', 'a signed delivery over HTTPS, verified against the certificate, is answered 200');
is(inbox_count(), $before + 1, 'and stored');
$out = `curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' --data-binary '$body' 'http://127.0.0.1:$port/hubspot/webhooks'`;
isnt($out, '200', 'plain HTTP is not served while TLS is on');
# the key never reaches the log
my $key = slurp_file("$dir/key.pem");
my ($key_line) = $key =~ /\n([A-Za-z0-9+\/]{40,})\n/;
ok(index(slurp_file($node->logfile), $key_line) < 0, 'the TLS key is not in the log');

sub wait_for_log
{
	my ($re) = @_;
	for (1 .. 100)
	{
		return 1 if slurp_file($node->logfile) =~ /$re/;
		sleep 0.1;
	}
	return 0;
}

done_testing();
