# The background workers: start, pg_stat_activity identity, SIGHUP reload,
# restart after being killed, database DDL while they run, clean shutdown.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my $node = HubSync::Node::new_node('workers', create_extension => 1);

ok(HubSync::Node::wait_for_workers($node), 'four hubsync workers run');
is($node->safe_psql('postgres',
	"SELECT string_agg(backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%'"),
	'hubsync enrich,hubsync pull,hubsync push,hubsync webhook', 'backend_type names each worker');
is($node->safe_psql('postgres',
	"SELECT count(DISTINCT datname) || ':' || max(datname) FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%'"),
	'1:postgres', 'workers are connected to hubsync.database');
for my $w ('hubsync push', 'hubsync pull', 'hubsync webhook', 'hubsync enrich')
{
	ok(HubSync::Node::wait_for_state($node, $w, 'running'), "$w reports running");
}

# SIGHUP: turning hubsync.enabled off idles the workers, on resumes them
$node->append_conf('postgresql.conf', "hubsync.enabled = off\n");
$node->reload;
ok(HubSync::Node::wait_for_state($node, 'hubsync push', 'idle: disabled'), 'reload: disabled push worker idles');
ok(HubSync::Node::wait_for_state($node, 'hubsync pull', 'idle: disabled'), 'reload: disabled pull worker idles');
$node->append_conf('postgresql.conf', "hubsync.enabled = on\n");
$node->reload;
ok(HubSync::Node::wait_for_state($node, 'hubsync push', 'running'), 'reload: re-enabled push worker runs');

# a killed worker is restarted by the postmaster
my $before = HubSync::Node::worker_pids($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($before->{'hubsync push'})");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hubsync push' AND pid <> $before->{'hubsync push'}"),
	'push worker restarted after pg_terminate_backend');
kill 'KILL', HubSync::Node::worker_pids($node)->{'hubsync pull'};
ok(HubSync::Node::wait_for_workers($node), 'workers back after kill -9 of one (crash restart)');
my $after = HubSync::Node::worker_pids($node);
isnt($after->{'hubsync pull'}, $before->{'hubsync pull'}, 'pull worker has a new pid');

# workers never block database DDL (they service ProcSignal barriers)
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE DATABASE ddl_probe', timeout => 60);
is($ret, 0, 'CREATE DATABASE while workers run');
($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE ddl_probe WITH (FORCE)', timeout => 60);
is($ret, 0, 'DROP DATABASE WITH (FORCE) while workers run');

# clean shutdown: the workers exit on SIGTERM
$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/hubsync \w+ \(PID \d+\) was terminated by signal/, 'no worker crashed on shutdown');
like($log, qr/database system is shut down/, 'server shut down');

done_testing();
