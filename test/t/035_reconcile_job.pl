# Reconciliation of a whole type as a background job: hubsync.reconcile_start()
# returns the run id at once, the pull worker reads and compares in slices of
# short transactions (its xmin is not pinned for the whole run), progress is
# visible in hubsync.reconcile_progress, and the drift (and with repair, what
# is acted on) equals what the direct hubsync.reconcile() gives.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $records = 3000;
my ($node, $fake) = HubSync::Node::with_fake('reconcile_job',
	conf => { 'hubsync.poll_interval' => '1h', 'hubsync.reconcile_at' => '' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# local records, then drift behind hubsync's back
q1("INSERT INTO hubspot.contacts (email, firstname) VALUES
	('a\@rj.test', 'A'), ('b\@rj.test', 'B'), ('c\@rj.test', 'C'), ('d\@rj.test', 'D')");
ok(HubSync::Node::wait_outbox_empty($node), 'local contacts pushed');
my %id = map { my ($e, $i) = split /\|/; ($e => $i) }
  split /\n/, q1("SELECT left(email, 1), hs_object_id FROM hubspot.contacts");
$fake->control('POST', 'seed', { objectType => 'contacts', count => $records,
	properties => { email => 'j{n}@rj.test', firstname => 'J{n}' } });          # missing_local
$fake->control('POST', "ui/contacts/$id{a}/gdpr-delete", {});                     # missing_remote
$fake->control('POST', "ui/contacts/$id{b}/delete", {});                          # archived_remote
$fake->control('POST', "ui/contacts/$id{c}", { properties => { firstname => 'Cee' } });  # mismatch

# the direct form, for reference
q1("CREATE TABLE direct AS SELECT object_type, hs_object_id, kind, property, local_value, remote_value, action "
	. "FROM hubsync.reconcile('contacts')");
is(q1("SELECT count(*) FROM direct"), $records + 3, 'direct form: every drift');

# the background form: returns at once, while HubSpot answers slowly
$fake->configure(latencyMs => 150, latencyJitterMs => 0);
my $t0 = time;
my $run = q1("SELECT hubsync.reconcile_start('contacts')");
my $took = time - $t0;
like($run, qr/^\d+$/, 'reconcile_start returns the run id');
cmp_ok($took, '<', 2, sprintf('and returns at once (%.2f s)', $took));
like(q1("SELECT state FROM hubsync.reconcile_runs WHERE id = $run"), qr/^(queued|running)$/,
	'the run is queued or running when the call returns');
is(q1("SELECT hubsync.reconcile_start('contacts')"), $run, 'the same run is not queued twice');
is(q1("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"), 0,
	'no session holds a transaction open for the run');

# sample the run: progress, and the pull worker's transaction horizon
my (%read, %xmin, $nullxmin, $samples, $state);
my $deadline = time + 120;
while (time < $deadline)
{
	my $row = q1("SELECT r.state, r.records_read, "
		. "coalesce((SELECT a.backend_xmin::text FROM pg_stat_activity a WHERE a.backend_type = 'hubsync pull'), '-') "
		. "FROM hubsync.reconcile_progress r WHERE r.id = $run");
	my ($st, $rd, $xm) = split /\|/, $row;
	$state = $st;
	last if $st ne 'running' && $st ne 'queued';
	$samples++;
	$read{$rd} = 1;
	if ($xm eq '-') { $nullxmin++ } else { $xmin{$xm} = 1 }
	usleep(100_000);
}
is($state, 'done', 'the background run finished');
cmp_ok($samples, '>=', 5, "sampled while it ran ($samples samples)");
cmp_ok(scalar(grep { $_ > 0 && $_ < $records } keys %read), '>=', 2,
	'progress advanced between samples (records_read: ' . join(',', sort { $a <=> $b } keys %read) . ')');
ok($nullxmin || keys(%xmin) > 1,
	'the pull worker held no transaction for the whole run (xmin cleared ' . ($nullxmin // 0)
	  . ' times, ' . scalar(keys %xmin) . ' distinct)');
is(q1("SELECT records_read >= $records AND records_estimate IS NOT NULL AND requests > 30 "
	. "FROM hubsync.reconcile_progress WHERE id = $run"), 't', 'progress: records read, estimate, requests');

my $cols = 'object_type, hs_object_id, kind, property, local_value, remote_value, action';
is(q1("SELECT count(*) FROM ((SELECT $cols FROM hubsync.reconcile_drift WHERE run_id = $run EXCEPT ALL SELECT $cols FROM direct) "
	. "UNION ALL (SELECT $cols FROM direct EXCEPT ALL SELECT $cols FROM hubsync.reconcile_drift WHERE run_id = $run)) x"),
	0, 'the background run reports exactly the drift of the direct form');
is(q1("SELECT missing_local || ',' || missing_remote || ',' || archived_remote || ',' || mismatch || ',' || repaired "
	. "FROM hubsync.reconcile_runs WHERE id = $run"), "$records,1,1,1,0", 'counts kept, nothing repaired');
is(q1("SELECT count(*) FROM hubspot.contacts"), 4, 'a report changes nothing');
is(q1("SELECT count(*) FROM hubsync._reconcile_remote"), 0, 'staging emptied');

# repair in the background: exactly the reported rows are acted on
$fake->configure(latencyMs => 0);
my $fixrun = q1("SELECT hubsync.reconcile_start('contacts', repair => true)");
ok($node->poll_query_until('postgres', "SELECT state = 'done' FROM hubsync.reconcile_runs WHERE id = $fixrun"),
	'the repair run finished');
is(q1("SELECT string_agg(kind || ':' || action || ':' || n, ',' ORDER BY kind) FROM "
	. "(SELECT kind, action, count(*) n FROM hubsync.reconcile_drift WHERE run_id = $fixrun GROUP BY 1, 2) x"),
	"archived_remote:pull:1,mismatch:pull:1,missing_local:pull:$records,missing_remote:push:1",
	'repair acts by ownership, as the direct form does');
is(q1("SELECT repaired FROM hubsync.reconcile_runs WHERE id = $fixrun"), $records + 3,
	'repaired counts the reported rows');
ok(HubSync::Node::wait_outbox_empty($node), 'the push of the repair sent');
is(q1("SELECT count(*) FROM hubspot.contacts"), $records + 3, 'missing pulled, archived removed');
is(q1("SELECT firstname FROM hubspot.contacts WHERE email = 'c\@rj.test'"), 'Cee', 'mismatch pulled');
is(q1("SELECT count(*) FROM hubsync.reconcile('contacts')"), 0, 'the direct form finds nothing left');

# the pull worker stops during a run: the run is abandoned (not left
# "running" for ever), its staged pages dropped, and a new one can start
$fake->configure(latencyMs => 150);
my $lost = q1("SELECT hubsync.reconcile_start('contacts')");
ok($node->poll_query_until('postgres', "SELECT records_read > 0 FROM hubsync.reconcile_runs WHERE id = $lost"),
	'a run under way');
q1("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'hubsync pull'");
$fake->configure(latencyMs => 0);
ok($node->poll_query_until('postgres', "SELECT state = 'abandoned' FROM hubsync.reconcile_runs WHERE id = $lost"),
	'the interrupted run is marked abandoned when the worker is back');
is(q1("SELECT count(*) FROM hubsync._reconcile_remote"), 0, 'and its staged pages are dropped');
my $again = q1("SELECT hubsync.reconcile_start('contacts')");
isnt($again, $lost, 'starting again makes a new run');
ok($node->poll_query_until('postgres', "SELECT state = 'done' FROM hubsync.reconcile_runs WHERE id = $again"),
	'which finishes');

# all types, and who may start one
my $all = q1("SELECT hubsync.reconcile_start()");
ok($node->poll_query_until('postgres', "SELECT state = 'done' FROM hubsync.reconcile_runs WHERE id = $all"),
	'a background run over every type finishes');
is(q1("SELECT drift FROM hubsync.reconcile_progress WHERE id = $all"), 0, 'and finds nothing');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT hubsync.reconcile_start('nosuch')");
like($err, qr/object type "nosuch" is not tracked by hubsync/, 'unknown object type refused clearly');
$node->safe_psql('postgres', "CREATE ROLE app LOGIN");
($ret, $out, $err) = $node->psql('postgres', "SET ROLE app; SELECT hubsync.reconcile_start()");
like($err, qr/permission denied/, 'reconcile_start is not for every role');

$node->stop;
done_testing();
