# Polling safety net, webhooks off: the poller finds records changed
# behind our back (500 edits), 25,000 records modified within one minute
# (past the 10,000-result search cap), 12,000 records sharing one
# timestamp, a change that reaches the search index late (trailing
# sweep), archived and restored records, associations added and removed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('poll',
	fake_config => { searchPerSecond => 50, searchIndexLagMs => 0 },
	conf => {
		'hubsync.poll_interval' => '2s',
		'hubsync.poll_index_lag' => '10s',
		'hubsync.poll_trailing_interval' => '2s',
		'hubsync.poll_archived_interval' => '3s',
		'hubsync.poll_association_interval' => '3s',
		'hubsync.search_rate' => 50,
		'hubsync.rate_limit' => 1000 });
$fake->configure(burstLimit => 1000);

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub now_ms { return int(time() * 1000); }

ok($node->poll_query_until('postgres',
	"SELECT count(*) FILTER (WHERE cursor_ms IS NOT NULL) = 3 FROM hubsync.poll_state WHERE object_type IN ('contacts', 'companies', 'deals')"),
	'the poller set its cursors');

# ---- 500 contacts created, then changed behind our back ----
my $seed = $fake->control('POST', 'seed', { objectType => 'contacts', count => 500,
	properties => { email => 'p{n}@poll.test', firstname => 'P{n}' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 500 FROM hubspot.contacts WHERE email LIKE 'p%\@poll.test'"),
	'500 new contacts found by the poller');
$fake->control('POST', 'touch', { objectType => 'contacts', firstId => $seed->{firstId},
	lastId => $seed->{lastId}, properties => { city => 'City {n}', firstname => 'Q{n}' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 500 FROM hubspot.contacts WHERE city LIKE 'City %' AND firstname LIKE 'Q%'"),
	'500 changes made behind our back found and applied');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'nothing pushed back (no loop)');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE firstname = 'Q7' AND city = 'City 7'"), 1,
	'values matched to the right record');

# a second look at the same records queues nothing new
my $events = q1("SELECT count(*) FROM hubsync.inbox");
sleep 5;
is(q1("SELECT count(*) FROM hubsync.inbox"), $events, 'records read again queue no duplicate events');

# ---- a change that reaches the search index 8 s late ----
my $late = $fake->control('POST', 'ui/contacts', { properties => { email => 'late@poll.test' },
	searchDelayMs => 8000 });
sleep 3;
# a later change moves the fast poll's cursor past the late one
$fake->control('POST', "ui/contacts/$seed->{firstId}", { properties => { jobtitle => 'Boss' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE jobtitle = 'Boss'"), 'the later change is found');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $late->{id}"),
	'the late record is caught by the trailing sweep');

# ---- archived and restored ----
my $gone = $seed->{firstId} + 1;
my $hid = q1("SELECT hubsync_id FROM hubspot.contacts WHERE hs_object_id = $gone");
$fake->control('POST', "ui/contacts/$gone/delete", {});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubspot.contacts WHERE hs_object_id = $gone"),
	'a record archived in HubSpot is deleted by the archived sweep');
$fake->control('POST', "ui/contacts/$gone/restore", {});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $gone"),
	'a restored record comes back');

# ---- associations added and removed ----
my $company = $fake->control('POST', 'ui/companies', { properties => { name => 'Acme' } });
my $co = $company->{id};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubspot.companies WHERE hs_object_id = $co"),
	'a new company is found');
my $ct = $seed->{firstId} + 2;
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $ct,
	toObjectType => 'companies', toObjectId => $co });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $ct AND to_type = 'companies' AND to_id = $co"),
	'an association added in HubSpot is found by the association sweep');
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 1 FROM hubspot.associations WHERE from_type = 'companies' AND from_id = $co AND to_id = $ct"),
	'and its other direction');
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $ct,
	toObjectType => 'companies', toObjectId => $co, remove => JSON::PP::true });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubspot.associations WHERE (from_id = $ct AND to_id = $co) OR (from_id = $co AND to_id = $ct)"),
	'an association removed in HubSpot is removed here');

# ---- the sweep's read fails for some inputs (207, not OBJECT_NOT_FOUND):
# their links are unknown, not gone, so they stay ----
my $ct2 = $seed->{firstId} + 3;
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $ct2,
	toObjectType => 'companies', toObjectId => $co });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $ct2 AND to_id = $co"),
	'a second association is found');
$fake->control('POST', 'faults', { queue => [ { partial207 => JSON::PP::true, failEvery => 1,
	category => 'INTERNAL_ERROR', match => '/associations/contacts/companies/batch/read', count => 20 } ] });
my $fired = 0;
for (1 .. 300)
{
	$fired = $fake->control('GET', 'faults')->{fired};
	last if $fired >= 1;
	select(undef, undef, undef, 0.1);
}
ok($fired >= 1, 'the sweep\'s reads failed');
my $after_fault = q1('SELECT now()');
ok($node->poll_query_until('postgres',
	"SELECT associations_at > '$after_fault' FROM hubsync.poll_state WHERE object_type = 'contacts'"),
	'and the sweep went on to its end');
$fake->control('POST', 'faults', { queue => [] });
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $ct2 AND (event ->> 'associationRemoved')::boolean"), 0,
	'no link removal queued for inputs whose read failed');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $ct2 AND to_id = $co"), 1,
	'the link is still here');
# ---- floods: the trailing sweep would read every record once more ----
q1("ALTER SYSTEM SET hubsync.poll_trailing_interval = '1h'");
q1("ALTER SYSTEM SET hubsync.poll_association_interval = '1h'");
q1("ALTER SYSTEM SET hubsync.poll_archived_interval = '1h'");
q1("SELECT pg_reload_conf()");

# ---- 25,000 companies modified within one minute ----
my $t0 = now_ms();
$fake->control('POST', 'seed', { objectType => 'companies', count => 25000,
	properties => { name => 'Co {n}' }, sameTimestamp => $t0 + 60000, modifiedSpreadMs => 60000 });
# while the poller works through the companies, a contact changed in
# HubSpot is found too: one type's long catch-up starves no other type
my $meanwhile = $fake->control('POST', 'ui/contacts', { properties => { email => 'meanwhile@poll.test' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $meanwhile->{id}"),
	'a contact changed during the companies\' catch-up is found');
my $companies_then = q1("SELECT count(*) FROM hubspot.companies WHERE name LIKE 'Co %'");
cmp_ok($companies_then, '<', 25000, "... before the catch-up ended ($companies_then of 25,000 companies in)");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 25000 FROM hubspot.companies WHERE name LIKE 'Co %'"), '25,000 companies modified within a minute all found');
my $c = $fake->control('GET', 'counters');
is($c->{byEndpoint}{'POST /crm/v3/objects/companies/search'}{400} // 0, 0,
	'no search ever paged past the 10,000-result cap');
is(q1("SELECT count(DISTINCT hs_object_id) || '|' || count(*) FROM hubspot.companies"), '25001|25001', 'no duplicate rows');

# ---- 12,000 deals sharing one timestamp ----
$fake->control('POST', 'seed', { objectType => 'deals', count => 12000,
	properties => { dealname => 'D {n}' }, sameTimestamp => now_ms() + 120000 });
ok($node->poll_query_until('postgres', "SELECT count(*) = 12000 FROM hubspot.deals"),
	'12,000 deals with one identical timestamp all found');
ok($node->poll_query_until('postgres',
	"SELECT cursor_id IS NULL AND NOT catching_up FROM hubsync.poll_state WHERE object_type = 'deals'"),
	'the walk by hs_object_id ended (no loop)');
is(q1("SELECT count(DISTINCT hs_object_id) FROM hubspot.deals"), 12000, 'no duplicate deals');

is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'still nothing pushed back');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'still no failed events');

$node->stop;
done_testing();
