# Without the extension in hubsync.database the workers idle quietly, and
# start working once it is created.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib 'test/perl';
use HubSync::Node;

my $node = HubSync::Node::new_node('noext');
ok(HubSync::Node::wait_for_workers($node), 'workers start without the extension');

# let them idle for a while, then count what they logged
sleep(12);
my $log = slurp_file($node->logfile);
my $idle_lines = () = $log =~ /worker is idle: extension "hubsync" is not installed/g;
is($idle_lines, 4, 'one idle line per worker, no log spam');
unlike($log, qr/ERROR|FATAL/, 'no errors while idle');
my $pids = HubSync::Node::worker_pids($node);
sleep(6);
is_deeply(HubSync::Node::worker_pids($node), $pids, 'idle workers are not crash-looping');

# a foreign schema named hubsync does not fool them
$node->safe_psql('postgres', 'CREATE SCHEMA hubsync; CREATE TABLE hubsync.outbox (x int)');
sleep(6);
is_deeply(HubSync::Node::worker_pids($node), $pids, 'a look-alike hubsync schema does not crash the workers');
$node->safe_psql('postgres', 'DROP SCHEMA hubsync CASCADE');

# creating the extension wakes them up within their idle check
$node->safe_psql('postgres', 'CREATE EXTENSION hubsync');
ok(HubSync::Node::wait_for_state($node, 'hubsync push', 'running'), 'push worker runs once the extension exists');
ok(HubSync::Node::wait_for_state($node, 'hubsync pull', 'running'), 'pull worker runs once the extension exists');

# dropping it sends them back to idle, without errors
$node->safe_psql('postgres', 'DROP EXTENSION hubsync');
ok($node->poll_query_until('postgres',
	"SELECT true", 't'), 'server still answers');
sleep(6);
$log = slurp_file($node->logfile);
unlike($log, qr/ERROR|FATAL/, 'no errors after DROP EXTENSION');
is_deeply([sort keys %{ HubSync::Node::worker_pids($node) }],
	['hubsync enrich', 'hubsync pull', 'hubsync push', 'hubsync webhook'], 'workers still up after DROP EXTENSION');

$node->stop;
done_testing();
