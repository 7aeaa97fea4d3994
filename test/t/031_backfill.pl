# Backfill: 50,000 HubSpot contacts imported through list paging; the
# pull worker is killed (kill -9) halfway and the import resumes where it
# stood, with no duplicate; local rows already there are matched by
# hs_object_id, hubsync_id and email; progress is readable while it runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('backfill',
	fake_config => { burstLimit => 1000, searchPerSecond => 50 },
	conf => { 'hubsync.rate_limit' => 1000, 'hubsync.search_rate' => 50,
		'hubsync.poll_interval' => '1h' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# local rows HubSpot already has: one linked by hubsync_id, one by email
q1("SELECT hubsync.pause()");
my $hid = q1("INSERT INTO hubspot.contacts (email, firstname) VALUES ('linked\@bf.test', 'Local') RETURNING hubsync_id");
q1("INSERT INTO hubspot.contacts (email, firstname) VALUES ('u7\@bf.test', 'Mine')");
my $seeded = $fake->control('POST', 'seed', { objectType => 'contacts', count => 50000,
	properties => { email => 'u{n}@bf.test', firstname => 'F{n}', lastname => 'L{n}' } });
my ($st) = $fake->request('POST', '/crm/v3/properties/contacts', { name => 'hubsync_id',
	label => 'hubsync id', type => 'string', fieldType => 'text', hasUniqueValue => JSON::PP::true,
	groupName => 'contactinformation' }, { Authorization => 'Bearer test-token' });
is($st, 201, 'hubsync_id property created in HubSpot');
$fake->control('POST', 'ui/contacts', { properties => { email => 'linked@bf.test',
	firstname => 'Remote', hubsync_id => $hid } });
# an association of a HubSpot contact: imported with it
my $co = $fake->control('POST', 'ui/companies', { properties => { name => 'Acme' } })->{id};
my $u5 = $seeded->{firstId} + 4;
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $u5,
	toObjectType => 'companies', toObjectId => $co });
q1("SELECT hubsync.resume()");

is(q1("SELECT string_agg(b, ',') FROM hubsync.backfill('contacts') b"), 'contacts', 'backfill started');
is(q1("SELECT count(*) FROM hubsync.backfill('contacts')"), 0, 'starting it again while it runs does nothing');

ok($node->poll_query_until('postgres', "SELECT done >= 15000 FROM hubsync.backfill_progress"),
	'halfway');
my $p = q1("SELECT state, total_estimate, rate > 0, backfill_done > 0 FROM hubsync.backfill_progress, hubsync.status WHERE status.object_type = 'contacts'");
like($p, qr/^running\|5000\d\|t\|t$/, 'progress readable while it runs: state, estimated total, rate, in hubsync.status');

# kill -9 the pull worker mid-import: the server restarts its processes
my $pid = HubSync::Node::worker_pids($node)->{'hubsync pull'};
ok($pid, 'pull worker running');
kill 'KILL', $pid;
ok(HubSync::Node::wait_for_workers($node), 'workers back after the crash');
ok($node->poll_query_until('postgres', "SELECT state = 'done' FROM hubsync.backfills WHERE object_type = 'contacts'"),
	'backfill resumed and finished');
is(q1("SELECT count(*) FROM hubspot.contacts"), 50001, 'every record once, local rows matched (no duplicate)');
is(q1("SELECT count(DISTINCT hs_object_id) FROM hubspot.contacts"), 50001, 'one row per HubSpot record');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NULL"), 0, 'every local row linked');
is(q1("SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$hid'"), 't',
	'row matched by hubsync_id');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE email = 'u7\@bf.test'"), 1, 'row matched by email');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE firstname = 'F12345' AND lastname = 'L12345' AND email = 'u12345\@bf.test'"),
	1, 'values imported');
like(q1("SELECT done || '|' || coalesce(eta::text, '') FROM hubsync.backfill_progress"), qr/^\d+\|00:00:00$/,
	'finished: time left is zero');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $u5 AND to_type = 'companies' AND to_id = $co"),
	'the records\' associations imported after them');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'"),
	'matched rows settled');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events');
is($fake->control('GET', 'counters')->{duplicates}{email} // 0, 0, 'no duplicate created in HubSpot');

# bad input
my ($ret, $out, $err) = $node->psql('postgres', "SELECT hubsync.backfill('nosuch')");
like($err, qr/object type "nosuch" is not tracked by hubsync/, 'unknown object type refused clearly');

$node->stop;
done_testing();
