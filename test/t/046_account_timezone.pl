# hubsync.account_timezone: HubSpot resets the daily allowance at midnight
# in the account's time zone, so the daily count starts again, and a DAILY
# 429 parks the outbox, until midnight there -- not UTC midnight.  The test
# picks a zone whose midnight is a few seconds away (a POSIX zone with the
# right UTC offset), makes HubSpot answer DAILY, and watches
# hubsync.summary across that midnight.  A bad zone is refused with a clear
# message and the setting keeps its value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('acctz');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

$sql->("INSERT INTO hubspot.contacts (email) VALUES ('warm\@example.com')");
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up contact pushed');
is($sql->('SHOW hubsync.account_timezone'), 'UTC', 'default zone UTC');

# ---- a zone PostgreSQL does not know: refused, value kept ----
my $log_pos = -s $node->logfile;
$node->append_conf('postgresql.conf', "hubsync.account_timezone = 'Mars/Olympus_Mons'\n");
$node->reload;
my $refused = 0;
for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default && !$refused; $i++)
{
	my $log = slurp_file($node->logfile, $log_pos);
	$refused = 1 if $log =~ /invalid value for hubsync\.account_timezone: "Mars\/Olympus_Mons"/
	  && $log =~ /HINT:  Use the HubSpot account's time zone/;
	select(undef, undef, undef, 0.1) unless $refused;
}
ok($refused, 'an unknown zone is refused in the log with a hint');
is($sql->('SHOW hubsync.account_timezone'), 'UTC', 'and the setting keeps its value');

# ---- a zone whose midnight is 30 to 90 seconds from now ----
# (on a whole minute: PostgreSQL refuses offsets with seconds, as zones
# with leap seconds)
my $t0 = (int((time() + 30) / 60) + 1) * 60;
$t0 += 60 if $t0 % 86400 == 0;    # not UTC midnight as well
my $offset = (86400 - $t0 % 86400) % 86400;    # local time at $t0 is 00:00:00
$offset -= 86400 if $offset > 43200;
my $abs = abs($offset);
# POSIX zones count west of UTC as positive
my $zone = sprintf('<ACC>%s%02d:%02d', $offset > 0 ? '-' : '+', int($abs / 3600), int($abs % 3600 / 60));
$node->append_conf('postgresql.conf', "hubsync.account_timezone = '$zone'\n");
$node->reload;
ok($node->poll_query_until('postgres', 'SHOW hubsync.account_timezone', $zone), "zone $zone loaded");
is($sql->("SELECT to_char(to_timestamp($t0) AT TIME ZONE '$zone', 'HH24:MI:SS')"), '00:00:00',
	'PostgreSQL agrees: local midnight of the account in a few seconds');
cmp_ok(time(), '<', $t0 - 10, 'enough time left before that midnight (else the machine is too slow)');

# ---- HubSpot answers DAILY: everything parks until the account's midnight ----
my $seq = $fake->control('GET', 'requests')->{lastSeq};
$fake->control('POST', 'faults', { queue => [
	{ status => 429, policy => 'DAILY', match => '/crm/v3/objects/contacts/batch/upsert' } ] });
my $id = $sql->("INSERT INTO hubspot.contacts (email) VALUES ('late\@example.com') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', 'SELECT blocked_until IS NOT NULL FROM hubsync.summary'),
	'DAILY 429: blocked');
is($sql->('SELECT extract(epoch FROM blocked_until)::bigint FROM hubsync.summary'), $t0,
	'blocked until midnight in the account\'s zone');
is($sql->("SELECT blocked_until = (date_trunc('day', now() AT TIME ZONE '$zone') + interval '1 day') AT TIME ZONE '$zone'
	FROM hubsync.summary"), 't', 'the same instant as PostgreSQL computes');
isnt($sql->("SELECT blocked_until = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'
	FROM hubsync.summary"), 't', 'not UTC midnight');
my ($used_before, $requests_before) = split /\|/, $sql->('SELECT daily_used, requests FROM hubsync.summary');
cmp_ok($used_before, '>=', 1, 'daily_used counts the refused request');
ok($node->poll_query_until('postgres', "SELECT last_status = 429 FROM hubsync.outbox WHERE hubsync_id = '$id'"),
	'the push was told 429');
my $parked = $sql->("SELECT next_attempt_at >= to_timestamp($t0) AND next_attempt_at < to_timestamp($t0) + interval '5 s'
	FROM hubsync.outbox WHERE hubsync_id = '$id'");
cmp_ok(time(), '<', $t0, 'still before the account\'s midnight');
is($parked, 't', 'the change is parked in the outbox until the account\'s midnight');
my $fault = (grep { ($_->{status} // 0) == 429 } @{ $fake->control('GET', "requests?since=$seq")->{requests} })[0];
ok($fault, 'the fake answered 429');

# ---- after the account's midnight: sent, and the day's count started again ----
ok(HubSync::Node::wait_outbox_empty($node), 'the change was sent after midnight');
my @after = @{ $fake->control('GET', "requests?since=$fault->{seq}")->{requests} };
my ($sent) = grep { $_->{path} eq '/crm/v3/objects/contacts/batch/upsert' && ($_->{status} // 0) == 200 } @after;
ok($sent && $sent->{startMs} >= $t0 * 1000, 'not before the account\'s midnight')
  or diag(explain($sent));
ok($sent && $sent->{startMs} < ($t0 + 60) * 1000, 'soon after it');
is($sql->('SELECT blocked_until IS NULL FROM hubsync.summary'), 't', 'no longer blocked');
# the day's count holds only what was sent since midnight: every request
# since the 429, as nothing could be sent between the 429 and midnight
my ($used_after, $requests_after) = split /\|/, $sql->('SELECT daily_used, requests FROM hubsync.summary');
cmp_ok($used_after, '>=', 1, 'daily_used counts the push after midnight');
is($used_after, $requests_after - $requests_before,
	"daily_used started again at the account's midnight (before it: $used_before)");

$node->stop;
$fake->stop;
done_testing();
