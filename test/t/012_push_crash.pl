# Crash safety: kill -9 of the push worker mid-batch and an immediate
# postmaster restart while 5,000 changes are in flight end with every
# change in HubSpot exactly once.  Rollbacks enqueue nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib 'test/perl';
use HubSync::Node;

# HubSpot's real latency makes a batch take a while: plenty in flight
my ($node, $fake) = HubSync::Node::with_fake('crash',
	fake_config => { latencyMs => 150, latencyJitterMs => 50 },
	conf => { 'hubsync.rate_limit' => 1000 });
$fake->configure(burstLimit => 1000);
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# warm up the hubsync_id property
$sql->("INSERT INTO hubspot.contacts (email) VALUES ('warm\@example.com')");
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up pushed');

$sql->("SET hubsync.max_changes_per_xact = 0;
	INSERT INTO hubspot.contacts (email, firstname)
	SELECT 'bulk' || g || '\@example.com', 'B' || g FROM generate_series(1, 5000) g");
# a rolled-back transaction in the middle enqueues nothing
$sql->("BEGIN; INSERT INTO hubspot.contacts (email) VALUES ('rolledback\@example.com'); ROLLBACK;");

# kill -9 the push worker while batches are in flight, twice
for my $round (1 .. 2)
{
	ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM hubsync.outbox WHERE state = 'in_flight'"), "round $round: changes in flight");
	my $pid = HubSync::Node::worker_pids($node)->{'hubsync push'};
	kill 'KILL', $pid;
	ok(HubSync::Node::wait_for_workers($node), "round $round: server and workers back after kill -9");
}

# and an immediate postmaster restart
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubsync.outbox WHERE state = 'in_flight'"), 'in flight before the restart');
$node->stop('immediate');
$node->start;
ok(HubSync::Node::wait_for_workers($node), 'workers back after an immediate restart');

# updates while recovering must not be lost either
$sql->("UPDATE hubspot.contacts SET lastname = 'L' || substr(email, 5, 4) WHERE email LIKE 'bulk1%'");

ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox'), 'outbox drained');
is($sql->('SELECT count(*) FROM hubsync.dead_letters'), '0', 'no dead letters');
my $stats = $fake->control('GET', 'stats');
is($stats->{contacts}{live}, 5001, 'every contact in HubSpot');
my $c = $fake->control('GET', 'counters');
is($c->{duplicates}{hubsync_id}, 0, 'no duplicate by hubsync_id');
is($c->{duplicates}{email}, 0, 'no duplicate by email');
is($sql->('SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NULL'), '0', 'every row has its HubSpot id');

# spot-check values, including the updates made during recovery
my $records = $fake->control('GET', 'records/contacts');
my %remote = map { ($_->{properties}{email} // '') => $_->{properties} } @{ $records->{results} };
my $rows = $sql->("SELECT email, firstname, coalesce(lastname, '') FROM hubspot.contacts");
my $diff = 0;
for my $line (split /\n/, $rows)
{
	my ($email, $first, $last) = split /\|/, $line, 3;
	my $p = $remote{$email};
	$diff++ unless $p && ($p->{firstname} // '') eq ($first // '') && ($p->{lastname} // '') eq $last;
}
is($diff, 0, 'every value matches');
ok(!exists $remote{'rolledback@example.com'}, 'the rolled-back insert never reached HubSpot');

$node->stop;
$fake->stop;
done_testing();
