# Slow headers: clients that trickle their request line and headers (a
# byte every few seconds, never idle long enough for an idle timeout) are
# cut off after hubsync.webhook_header_timeout, and one client address
# cannot take more than hubsync.webhook_max_connections_per_address slots;
# so valid deliveries from another address are answered within HubSpot's
# 5 s throughout.  Default limits (64 connections), as in
# the reported attack: 32 connections from each of two addresses.  The
# floods are loopback only and bounded in time and connection count.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use JSON::PP;
use Digest::SHA qw(hmac_sha256_base64);
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;

# binding to 127.0.0.2 and up needs the whole 127/8 on loopback (Linux)
my $probe = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0) or die;
plan skip_all => 'cannot bind to 127.0.0.2'
  unless IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $probe->sockport, LocalAddr => '127.0.0.2');
close $probe;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = HubSync::Node::new_node('slowhdr', create_extension => 1,
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
		'hubsync.api_base_url' => 'http://127.0.0.1:1' });
$node->safe_psql('postgres', "SET log_statement = 'none';
	SELECT hubsync.set_credentials(client_secret => 'hubsync-test-secret')");
my $url = "http://127.0.0.1:$port/hubspot/webhooks";
my $json = JSON::PP->new->canonical;
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $header_timeout = 5;		# the default of hubsync.webhook_header_timeout
local $SIG{PIPE} = 'IGNORE';

sub wait_listening
{
	for (1 .. 150)
	{
		return 1 if IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
		sleep 0.1;
	}
	return 0;
}
sub sign_v3
{
	my ($body, $ts) = @_;
	my $s = hmac_sha256_base64("POST$url$body$ts", 'hubsync-test-secret');
	$s .= '=' while length($s) % 4;
	return $s;
}
my $event_id = 5000;
# post_valid -- one signed delivery from 127.0.0.4 on a new connection;
# returns (status, seconds taken)
sub post_valid
{
	$event_id++;
	my $body = $json->encode([{ eventId => $event_id, subscriptionId => 1, portalId => 62515,
		appId => 54321, occurredAt => int(time() * 1000), subscriptionType => 'contact.propertyChange',
		attemptNumber => 0, objectId => 700000 + $event_id, propertyName => 'firstname',
		propertyValue => "v$event_id", changeSource => 'CRM_UI', sourceId => 'userId:1' }]);
	my $ts = int(time() * 1000);
	my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 0, local_address => '127.0.0.4');
	my $t = time();
	my $r = $http->request('POST', $url, { content => $body, headers => {
		'Content-Type' => 'application/json', 'X-HubSpot-Signature-v3' => sign_v3($body, $ts),
		'X-HubSpot-Request-Timestamp' => $ts } });
	diag("599: $r->{content}") if $r->{status} == 599;
	return ($r->{status}, time() - $t);
}
sub inbox_count { return $sql->('SELECT count(*) FROM hubsync.inbox'); }
sub counter { return $sql->("SELECT value FROM hubsync.webhook_stats WHERE counter = '$_[0]'"); }

# trickle -- in a child: hold $per connections from each local address,
# sending one header byte on each every $every seconds, until $until;
# closed ones are replaced at most once a second (at most $max_connects in
# all).  Writes "longest lifetime of a connection, connects" to $report.
sub trickle
{
	my (%o) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	my $head = "POST /hubspot/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " . ('p' x 2000) . "\r\n";
	my @conns;
	my ($connects, $longest, $last_topup, $last_write) = (0, 0, 0, 0);
	my $gone = sub {
		my ($c) = @_;
		my $life = time() - $c->{t0};
		$longest = $life if $life > $longest;
		close $c->{s};
	};
	while (time() < $o{until})
	{
		if (time() - $last_topup >= 1)
		{
			$last_topup = time();
			for my $addr (@{ $o{addrs} })
			{
				my $have = grep { $_->{addr} eq $addr } @conns;
				while ($have < $o{per} && $connects < $o{max_connects})
				{
					$connects++;
					my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
						LocalAddr => $addr, Timeout => 1) or last;
					$s->blocking(0);
					push @conns, { s => $s, addr => $addr, t0 => time(), i => 0 };
					$have++;
				}
			}
		}
		my $write = time() - $last_write >= $o{every};
		$last_write = time() if $write;
		my @keep;
		for my $c (@conns)
		{
			my $n = sysread($c->{s}, my $buf, 4096);
			if (defined $n && $n == 0 || !defined $n && !$!{EAGAIN})
			{
				$gone->($c);
				next;
			}
			if ($write && !defined syswrite($c->{s}, substr($head, $c->{i}++ % length($head), 1)))
			{
				$gone->($c);
				next;
			}
			push @keep, $c;
		}
		@conns = @keep;
		sleep 0.1;
	}
	$gone->($_) for @conns;
	open my $fh, '>', $o{report} or die;
	printf $fh "%.2f %d\n", $longest, $connects;
	close $fh;
	POSIX::_exit(0);		# not exit: the parent's END blocks stop the node
}

# flood_and_deliver -- start tricklers, send a valid delivery every 0.5 s
# during the flood; returns (tries, answered 200, slowest, reports)
sub flood_and_deliver
{
	my ($secs, @tricklers) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $until = time() + $secs;
	my $k = 0;
	my @kids = map { $k++; trickle(%$_, until => $until, report => "$dir/r$k") } @tricklers;
	sleep 1.5;		# every slot the flood can take is taken
	my ($tries, $ok, $slowest) = (0, 0, 0);
	while (time() < $until - 1)
	{
		my ($status, $took) = post_valid();
		$tries++;
		$ok++ if $status == 200 && $took < 5;
		diag(sprintf('delivery %d: status %s after %.2f s', $tries, $status, $took)) if $status != 200;
		$slowest = $took if $took > $slowest;
		sleep 0.5;
	}
	waitpid($_, 0) for @kids;
	my @reports = map { [split ' ', slurp_file("$dir/r$_")] } 1 .. $k;
	return ($tries, $ok, $slowest, @reports);
}

ok(wait_listening(), 'receiver listens');
my ($status) = post_valid();
is($status, 200, 'a valid delivery is answered 200');

# ---- two addresses, 32 trickling connections each, for 16 s ----
my $cut_before = counter('connections_cut');
my $stored_before = inbox_count();
my ($tries, $ok, $slowest, @rep) = flood_and_deliver(16,
	{ addrs => ['127.0.0.2'], per => 32, every => 3, max_connects => 600 },
	{ addrs => ['127.0.0.3'], per => 32, every => 3, max_connects => 600 });
diag(sprintf('flood: %d valid deliveries, slowest %.2f s; longest trickling connection %s s / %s s, %s + %s connects',
	$tries, $slowest, $rep[0][0], $rep[1][0], $rep[0][1], $rep[1][1]));
cmp_ok($tries, '>=', 10, "valid deliveries sent during the flood ($tries)");
is($ok, $tries, 'every one answered 200 within 5 s');
cmp_ok($slowest, '<', 5, sprintf('slowest %.2f s', $slowest));
is(inbox_count() - $stored_before, $tries, 'each stored');
for my $i (0, 1)
{
	cmp_ok($rep[$i][0], '<=', $header_timeout + 1.5,
		"no trickling connection from 127.0.0.@{[$i + 2]} lived past the header timeout (longest $rep[$i][0] s, $rep[$i][1] connects)");
}
cmp_ok(counter('connections_cut') - $cut_before, '>=', 2 * 16,
	'the cut connections are counted in webhook_stats');

# ---- the legitimate path: a keep-alive client with several requests ----
my $ka = HTTP::Tiny->new(timeout => 5, keep_alive => 1, local_address => '127.0.0.4');
my $answered = 0;
for (1 .. 3)
{
	$event_id++;
	my $body = $json->encode([{ eventId => $event_id, subscriptionId => 1, occurredAt => int(time() * 1000),
		subscriptionType => 'contact.propertyChange', objectId => 800000 + $event_id,
		propertyName => 'firstname', propertyValue => 'x' }]);
	my $ts = int(time() * 1000);
	$answered++ if $ka->request('POST', $url, { content => $body, headers => {
		'Content-Type' => 'application/json', 'X-HubSpot-Signature-v3' => sign_v3($body, $ts),
		'X-HubSpot-Request-Timestamp' => $ts } })->{status} == 200;
	sleep 1;
}
is($answered, 3, 'a kept-alive connection still serves request after request');

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
done_testing();
