# Reconciliation: every kind of drift planted behind hubsync's back
# (webhooks off, poller idle) is found with both values; repair acts by
# ownership (pull, push); a second run finds nothing; runs are kept with
# their counts; the daily run happens at hubsync.reconcile_at.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('reconcile',
	conf => { 'hubsync.poll_interval' => '1h', 'hubsync.reconcile_at' => '' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1("SELECT hubsync.set_owner('contacts', 'jobtitle', 'postgres')");
q1("INSERT INTO hubspot.contacts (email, firstname, jobtitle, city) VALUES
	('a\@rc.test', 'A', NULL, NULL), ('b\@rc.test', 'B', NULL, NULL),
	('c\@rc.test', 'C', NULL, NULL), ('d\@rc.test', 'D', 'Eng', NULL),
	('e\@rc.test', 'E', NULL, 'Paris'), ('f\@rc.test', 'F', NULL, NULL)");
ok(HubSync::Node::wait_outbox_empty($node), 'local contacts pushed');
my %id = map { my ($e, $i) = split /\|/; ($e => $i) }
  split /\n/, q1("SELECT left(email, 1), hs_object_id FROM hubspot.contacts");

# plant the drift
my $seed = $fake->control('POST', 'seed', { objectType => 'contacts', count => 2,
	properties => { email => 'new{n}@rc.test', firstname => 'New' } });     # missing_local x2
$fake->control('POST', "ui/contacts/$id{a}/gdpr-delete", {});                # missing_remote
$fake->control('POST', "ui/contacts/$id{b}/delete", {});                     # archived_remote
$fake->control('POST', "ui/contacts/$id{c}", { properties => { firstname => 'Cee' } });  # newer in HubSpot: pull
$fake->control('POST', "ui/contacts/$id{d}", { properties => { jobtitle => 'CEO' } });   # postgres-owned: push
$fake->control('POST', 'touch', { objectType => 'contacts', ids => [ $id{e} ],           # older than our sync: push
	properties => { city => 'Rome' }, sameTimestamp => 1000000000000 });

my $drift = q1("SELECT kind, coalesce(property, '-'), coalesce(local_value, '-'), coalesce(remote_value, '-'), action, "
	. "coalesce(hs_object_id::text, '-') FROM hubsync.reconcile('contacts') ORDER BY 1, 2, 6");
my @rows = split /\n/, $drift;
is(scalar(@rows), 7, 'seven drifts found') or diag $drift;
is(scalar(grep { /^missing_local\|-\|-\|-\|none\|/ } @rows), 2, 'missing_local: the two records only HubSpot has');
ok((grep { $_ eq "missing_remote|-|-|-|none|$id{a}" } @rows), 'missing_remote: the record HubSpot lost');
ok((grep { $_ eq "archived_remote|-|-|-|none|$id{b}" } @rows), 'archived_remote: the record archived in HubSpot');
ok((grep { $_ eq "mismatch|firstname|C|Cee|none|$id{c}" } @rows), 'mismatch with both values (firstname)');
ok((grep { $_ eq "mismatch|jobtitle|Eng|CEO|none|$id{d}" } @rows), 'mismatch of a postgres-owned property');
ok((grep { $_ eq "mismatch|city|Paris|Rome|none|$id{e}" } @rows), 'mismatch older in HubSpot');
is(q1("SELECT count(*) FROM hubspot.contacts"), 6, 'a report changes nothing');
is(q1("SELECT missing_local || ',' || missing_remote || ',' || archived_remote || ',' || mismatch || ',' || repaired || ',' || state "
	. "FROM hubsync.reconcile_runs ORDER BY id DESC LIMIT 1"), '2,1,1,3,0,done', 'the run is kept with its counts');

# repair
$drift = q1("SELECT kind, coalesce(property, '-'), action FROM hubsync.reconcile('contacts', repair => true) ORDER BY 1, 2, 3");
is($drift, join("\n", 'archived_remote|-|pull', 'mismatch|city|push', 'mismatch|firstname|pull',
	'mismatch|jobtitle|push', 'missing_local|-|pull', 'missing_local|-|pull', 'missing_remote|-|push'),
	'repair acts by ownership');
ok(HubSync::Node::wait_outbox_empty($node), 'pushes of the repair sent');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE email LIKE 'new%\@rc.test'"), 2, 'missing records pulled');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $id{b}"), 0, 'archived record removed here');
is(q1("SELECT firstname FROM hubspot.contacts WHERE email = 'c\@rc.test'"), 'Cee', 'newer HubSpot value pulled');
my $rec = $fake->control('GET', "records/contacts/$id{d}");
is($rec->{properties}{jobtitle}, 'Eng', 'postgres-owned value pushed back');
$rec = $fake->control('GET', "records/contacts/$id{e}");
is($rec->{properties}{city}, 'Paris', 'newer local value pushed');
my $a_new = q1("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'a\@rc.test'");
ok($a_new && $a_new ne $id{a}, 'the lost record was created again in HubSpot');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'nothing else queued (no loop)');

is(q1("SELECT count(*) FROM hubsync.reconcile('contacts')"), 0, 'a second run finds nothing');
is(q1("SELECT count(*) FROM hubsync.reconcile()"), 0, 'nor does a run over every object type');
is(q1("SELECT count(*) FROM hubsync.reconcile_runs WHERE state = 'done'"), 4, 'four runs kept');
isnt(q1("SELECT reconciled_at FROM hubsync.status WHERE object_type = 'contacts'"), '', 'status shows the last run');

# bad input
my ($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM hubsync.reconcile('nosuch')");
like($err, qr/object type "nosuch" is not tracked by hubsync/, 'unknown object type refused clearly');
$node->safe_psql('postgres', "CREATE ROLE app LOGIN");
($ret, $out, $err) = $node->psql('postgres', "SET ROLE app; SELECT * FROM hubsync.reconcile()");
like($err, qr/permission denied/, 'reconcile is not for every role');

# the daily run
my $at = q1("SELECT to_char(now() - interval '1 minute', 'HH24:MI')");
q1("ALTER SYSTEM SET hubsync.reconcile_at = '$at'");
q1("SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.reconcile_runs WHERE trigger = 'daily' AND state = 'done'"),
	'the daily run happened by itself');
is(q1("SELECT records_remote >= 7 AND mismatch = 0 AND missing_local = 0 FROM hubsync.reconcile_runs WHERE trigger = 'daily'"),
	't', 'and found no drift');
sleep 2;
is(q1("SELECT count(*) FROM hubsync.reconcile_runs WHERE trigger = 'daily'"), 1, 'once a day');

$node->stop;
done_testing();
