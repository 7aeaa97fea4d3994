# The Prometheus endpoint (hubsync.metrics_port): off by default; once on,
# GET /metrics is valid exposition text (promtool check metrics) with
# every family of DESIGN section 9 and its type; request counters and the
# push latency histogram grow with a push; queue depths come from the
# catalog; other methods are refused.  The shipped alert rules pass
# promtool check rules.  promtool (Debian package prometheus) is
# installed by the test command's set-up: missing, this test fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use Time::HiRes qw(time);
use File::Temp qw(tempfile);
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;

my $wport = PostgreSQL::Test::Cluster::get_free_port();
my ($node, $fake) = HubSync::Node::with_fake('metrics',
	conf => { 'hubsync.webhook_port' => $wport });
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $http = HTTP::Tiny->new(timeout => 15);
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $url = "http://127.0.0.1:$port/metrics";

my $promtool = `command -v promtool 2>/dev/null`;
chomp $promtool;
ok($promtool ne '', 'promtool is installed (Debian package prometheus; scripts/common.sh installs it)')
  or diag('promtool missing: install the Debian package "prometheus"; the checks below fail without it');

# ---- off by default
is($sql->('SHOW hubsync.metrics_port'), '0', 'hubsync.metrics_port defaults to 0 (off)');
is($sql->('SHOW hubsync.metrics_listen_address'), '127.0.0.1', 'listens on loopback by default');
ok(HubSync::Node::wait_for_state($node, 'hubsync webhook', 'running'), 'webhook worker runs');
is($http->get($url)->{status}, 599, 'nothing listens while the port is 0');
unlike(slurp_file($node->logfile), qr/metrics endpoint listening/, 'the endpoint never started');

# ---- on, by reload
$node->append_conf('postgresql.conf', "hubsync.metrics_port = $port\n");
$node->reload;
my $r;
for (1 .. 100)
{
	$r = $http->get($url);
	last if $r->{status} != 599;
	select(undef, undef, undef, 0.1);
}
is($r->{status}, 200, 'GET /metrics answers 200 after the reload');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'text exposition content type');

# promtool_ok -- promtool's verdict on the exposition text
sub promtool_ok
{
	my ($text, $name) = @_;
	my ($fh, $file) = tempfile();
	print $fh $text;
	close $fh;
	my $out = `$promtool check metrics < $file 2>&1`;
	my $rc = $? >> 8;
	ok($promtool ne '' && $rc == 0, $name) or diag("promtool check metrics (rc $rc): $out");
}
promtool_ok($r->{content}, 'promtool check metrics accepts the exposition');

# ---- every family, with its type
my %want = (
	hubsync_outbox_pending => 'gauge',
	hubsync_outbox_oldest_age_seconds => 'gauge',
	hubsync_dead_letters => 'gauge',
	hubsync_http_requests_total => 'counter',
	hubsync_rate_limit_used => 'gauge',
	hubsync_rate_limit_max => 'gauge',
	hubsync_rate_limit_blocked => 'gauge',
	hubsync_daily_used => 'gauge',
	hubsync_daily_limit => 'gauge',
	hubsync_webhook_events_total => 'counter',
	hubsync_inbox_pending => 'gauge',
	hubsync_inbox_lag_seconds => 'gauge',
	hubsync_inbox_failed => 'gauge',
	hubsync_push_latency_seconds => 'histogram',
	hubsync_push_retries_total => 'counter',
	hubsync_worker_up => 'gauge',
	hubsync_worker_state => 'gauge',
	hubsync_backfill_records => 'gauge',
	hubsync_backfill_total_estimate => 'gauge',
	hubsync_backfill_state => 'gauge',
	hubsync_poll_failing => 'gauge',
	hubsync_object_type_paused => 'gauge',
	hubsync_auth_failed => 'gauge',
	hubsync_paused => 'gauge',
	hubsync_metrics_catalog_age_seconds => 'gauge');
my %type = $r->{content} =~ /^# TYPE (\S+) (\S+)$/mg;
my %help = map { $_ => 1 } $r->{content} =~ /^# HELP (\S+) \S/mg;
for my $f (sort keys %want)
{
	is($type{$f}, $want{$f}, "family $f is a $want{$f}");
	ok($help{$f}, "family $f has a HELP line");
}

# value -- one sample's value (labels as written), or undef
sub value
{
	my ($text, $sample) = @_;
	return $text =~ /^\Q$sample\E (\S+)$/m ? $1 : undef;
}

# sum_of -- the sum of a family's samples whose labels match a regex
sub sum_of
{
	my ($text, $family, $labels) = @_;
	my $sum = 0;
	while ($text =~ /^\Q$family\E(\{[^}]*\})? (\S+)$/mg)
	{
		my ($l, $v) = ($1 // '', $2);
		$sum += $v if $l =~ $labels;
	}
	return $sum;
}

is(value($r->{content}, 'hubsync_worker_up{worker="webhook"}'), '1', 'webhook worker up');
is(value($r->{content}, 'hubsync_worker_up{worker="push"}'), '1', 'push worker up');
is(value($r->{content}, 'hubsync_worker_state{worker="pull",state="running"}'), '1', 'worker state as a label');
is(value($r->{content}, 'hubsync_rate_limit_max'), $sql->('SELECT window_limit FROM hubsync.quota_status()'),
	'rate limit max is hubsync.quota_status().window_limit');
ok(defined value($r->{content}, 'hubsync_http_requests_total{class="realtime",status="429"}'),
	'the 429 series exists before any 429');
ok(defined value($r->{content}, 'hubsync_webhook_events_total{result="refused_signature"}'),
	'webhook refusals by result');

# ---- the catalog gauges: a paused type's change waits in the outbox
$sql->("SELECT hubsync.pause('contacts')");
$sql->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('metrics\@example.com', 'Mia')");
my $pending;
for (1 .. 150)
{
	$r = $http->get($url);
	$pending = value($r->{content}, 'hubsync_outbox_pending{object_type="contacts"}');
	last if defined $pending && $pending eq '1';
	select(undef, undef, undef, 0.1);
}
is($pending, '1', 'hubsync_outbox_pending counts the waiting change (read from the catalog)');
is(value($r->{content}, 'hubsync_outbox_pending{object_type="deals"}'), '0', 'tracked types without changes show 0');
is(value($r->{content}, 'hubsync_paused'), '0', 'pausing one type is not a global pause');
is(value($r->{content}, 'hubsync_object_type_paused{object_type="contacts"}'), '1', 'the paused type says so');
ok(value($r->{content}, 'hubsync_outbox_oldest_age_seconds{object_type="contacts"}') >= 0, 'queue age of the waiting change');
ok(value($r->{content}, 'hubsync_metrics_catalog_age_seconds') < 6, 'catalog values are fresh');
my $before = $r->{content};

# ---- a push: request counters and the latency histogram grow
$sql->("SELECT hubsync.resume('contacts')");
ok(HubSync::Node::wait_outbox_empty($node), 'the change was pushed');
$r = $http->get($url);
my $after = $r->{content};
ok(sum_of($after, 'hubsync_http_requests_total', qr/class="realtime",status="2\d\d"/) >
	sum_of($before, 'hubsync_http_requests_total', qr/class="realtime",status="2\d\d"/),
	'hubsync_http_requests_total{class="realtime",status="2xx"} rose after the push');
ok(value($after, 'hubsync_push_latency_seconds_count') > value($before, 'hubsync_push_latency_seconds_count'),
	'the push latency histogram counted the pushed change');
is(value($after, 'hubsync_push_latency_seconds_bucket{le="+Inf"}'), value($after, 'hubsync_push_latency_seconds_count'),
	'+Inf bucket equals the count');
ok(value($after, 'hubsync_push_latency_seconds_sum') > 0, 'latency sum grew');
ok(value($after, 'hubsync_daily_used') > 0, 'daily use counted');
promtool_ok($after, 'promtool check metrics accepts the exposition after traffic');

# counters never go down while the server is up
my $bad = 0;
while ($before =~ /^(hubsync_\S+_total(?:\{[^}]*\})?) (\S+)$/mg)
{
	my ($s, $v) = ($1, $2);
	my $now = value($after, $s);
	$bad++ if !defined $now || $now < $v;
}
is($bad, 0, 'every counter sample is still there and not lower');

# ---- other methods and paths are refused; the receiver is unaffected
for my $m ('POST', 'PUT', 'DELETE')
{
	my $res = $http->request($m, $url, { content => 'x=1' });
	is($res->{status}, 405, "$m /metrics refused with 405");
	is($res->{headers}{allow}, 'GET', "$m: Allow says GET") if $m eq 'POST';
}
is($http->get("http://127.0.0.1:$port/")->{status}, 404, 'other paths are 404');

# ---- scrapers that stall hold no one but themselves: with every metrics
# connection taken by clients that never finish their headers or never
# read, the receiver (same worker, same loop) still answers at once
my @stalled;
for (1 .. 8)
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or next;
	print $sock ($_ % 2 ? "GET /metrics HTTP/1.1\r\nHost: x\r\n" : "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	push @stalled, $sock;
}
is(scalar @stalled, 8, 'eight stalled scrapers connected');
my $t0 = time;
my $wh = $http->request('POST', "http://127.0.0.1:$wport/hubspot/webhooks",
	{ content => '[]', headers => { 'Content-Type' => 'application/json' } });
my $took = time - $t0;
is($wh->{status}, 401, 'the receiver answers an unsigned delivery meanwhile');
ok($took < 2, sprintf('within 2 s (%.3f s)', $took));
close $_ for @stalled;

# ---- back off on reload
$node->append_conf('postgresql.conf', "hubsync.metrics_port = 0\n");
$node->reload;
my $closed = 0;
for (1 .. 100)
{
	if ($http->get($url)->{status} == 599) { $closed = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($closed, 'port 0 closes the endpoint again');

# ---- the shipped alert rules
my $rules = `$promtool check rules docs/prometheus/hubsync-rules.yml 2>&1`;
ok($promtool ne '' && $? == 0, 'promtool check rules docs/prometheus/hubsync-rules.yml')
  or diag($rules);

# the Grafana dashboard: valid JSON whose every query is valid PromQL
# (checked as recording rules, Grafana's variables replaced) and uses only
# families the endpoint serves
my $dash = JSON::PP->new->decode(slurp_file('docs/grafana/hubsync.json'));
my @exprs = map { map { $_->{expr} } @{ $_->{targets} || [] } } @{ $dash->{panels} };
ok(@exprs >= 15, 'the dashboard has its queries');
my ($rfh, $rfile) = tempfile(SUFFIX => '.yml');
print $rfh "groups:\n- name: dashboard\n  rules:\n";
for my $i (0 .. $#exprs)
{
	(my $e = $exprs[$i]) =~ s/\$__rate_interval/5m/g;
	$e =~ s/\$instance/.*/g;
	print $rfh "  - record: dashboard:expr$i\n    expr: " . JSON::PP->new->allow_nonref->encode($e) . "\n";
}
close $rfh;
my $dout = `$promtool check rules $rfile 2>&1`;
ok($promtool ne '' && $? == 0, 'every dashboard query is valid PromQL') or diag($dout);
my %served = map { $_ => 1 } keys %type;
my @unknown = grep { !$served{$_} && !$served{ s/_(bucket|count|sum)$//r } }
  map { /\b(hubsync_[a-z_]+)/g } @exprs,
  grep { !/^\s*#/ } split /\n/, slurp_file('docs/prometheus/hubsync-rules.yml');
is("@unknown", '', 'the dashboard and the rules use only served families');

$node->stop;
$fake->stop if $fake->can('stop');
done_testing();
