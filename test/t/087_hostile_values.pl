# Hostile values inside otherwise well-formed HubSpot answers: garbage
# timestamps, ids, totals, results and paging in search and list answers
# (poller, backfill, reconciliation), a cursor with '&', '/', '#', '?' and
# a space, a 10 kB cursor, a non-object association answer, Retry-After
# values that are huge, negative or not numbers.  Each becomes an error
# recorded for that request (hubsync.status, backfill_progress, a
# WARNING), never an ERROR that restarts the pull worker; sync goes on
# once HubSpot answers properly again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('hostile_values',
	fake_config => { searchPerSecond => 50, searchIndexLagMs => 0 },
	conf => {
		'hubsync.poll_interval' => '1s',
		'hubsync.poll_index_lag' => '5s',
		'hubsync.poll_trailing_interval' => '1h',
		'hubsync.poll_archived_interval' => '1h',
		'hubsync.poll_association_interval' => '2s',
		'hubsync.search_rate' => 50,
		'hubsync.rate_limit' => 1000 });
$fake->configure(burstLimit => 1000);
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub faults { $fake->control('POST', 'faults', { clear => JSON::PP::true, queue => [@_] }); }

ok(HubSync::Node::wait_for_workers($node), 'workers run');
ok($node->poll_query_until('postgres',
	"SELECT count(*) FILTER (WHERE cursor_ms IS NOT NULL) = 3 FROM hubsync.poll_state WHERE object_type IN ('contacts', 'companies', 'deals')"),
	'the poller set its cursors');
my $pids = HubSync::Node::worker_pids($node);

# ---- the poller's search answers garbage: one mode at a time ----
my %expect = (
	timestamp => qr/unusable (updatedAt|lastmodifieddate)/,
	id        => qr/record id that is not/,
	results   => qr/no list of results/,
	paging    => qr/paging that is not an object/,
	nonobject => qr/not a JSON object/,
	total     => qr/total that is not a count/);
my $n = 0;
for my $mode (qw(timestamp id results paging nonobject total))
{
	$n++;
	# every search answers garbage until the error shows, then HubSpot heals
	faults({ garble => $mode, match => '/crm/v3/objects/contacts/search', count => 100000 });
	$fake->control('POST', 'ui/contacts', { properties => { email => "poll$n\@hostile.test", firstname => "P$n" } });
	ok($node->poll_query_until('postgres',
		"SELECT poll_error IS NOT NULL FROM hubsync.status WHERE object_type = 'contacts'"),
		"$mode: the poll error is in hubsync.status");
	like(q1("SELECT poll_error FROM hubsync.status WHERE object_type = 'contacts'"), $expect{$mode},
		"$mode: and says what was wrong");
	is_deeply(HubSync::Node::worker_pids($node), $pids, "$mode: the pull worker did not restart");
	faults();
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM hubspot.contacts WHERE email = 'poll$n\@hostile.test'"),
		"$mode: once HubSpot answers properly, the record is found");
	ok($node->poll_query_until('postgres',
		"SELECT poll_error IS NULL FROM hubsync.status WHERE object_type = 'contacts'"),
		"$mode: and the error is gone");
}
ok($node->log_contains("hubsync could not search contacts records changed in HubSpot: HubSpot's answer has"),
	'the unusable answers were logged');
is_deeply(HubSync::Node::worker_pids($node), $pids, 'search garbage: the same worker processes');

# ---- the association sweep's answer is no list of results: the links
# it cannot read stay as they are ----
my $co = $fake->control('POST', 'ui/companies', { properties => { name => 'Hostile Inc' } })->{id};
my $ct = q1("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'poll1\@hostile.test'");
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $ct,
	toObjectType => 'companies', toObjectId => $co });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $ct AND to_id = $co"),
	'an association is found by the sweep');
faults({ status => 200, body => { status => 'COMPLETE' }, contentType => 'application/json',
	match => '/associations/contacts/companies/batch/read', count => 1000 });
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE 'association sweep: HubSpot''s answer has no list of results' FROM hubsync.poll_state WHERE object_type = 'contacts'"),
	'association garbage: the error is recorded');
my $t0 = q1('SELECT now()');
ok($node->poll_query_until('postgres',
	"SELECT associations_at > '$t0' FROM hubsync.poll_state WHERE object_type = 'contacts'"),
	'association garbage: a whole sweep ran with it');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $ct AND (event ->> 'associationRemoved')::boolean"), 0,
	'association garbage: no link removal queued');
is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'contacts' AND from_id = $ct AND to_id = $co"), 1,
	'association garbage: the link is still here');
faults();
is_deeply(HubSync::Node::worker_pids($node), $pids, 'association garbage: the same worker processes');
q1("ALTER SYSTEM SET hubsync.poll_association_interval = '1h'");
q1('SELECT pg_reload_conf()');

# ---- backfill: a cursor with '&', '=', '/', '#', '?' and a space is sent
# back URL-encoded (one query parameter, nothing cut off) ----
$fake->control('POST', 'seed', { objectType => 'contacts', count => 150,
	properties => { email => 'b{n}@backfill.test' } });
my $seq = $fake->control('GET', 'requests?since=0')->{lastSeq};
faults({ garble => 'cursor', match => '/crm/v3/objects/contacts', method => 'GET', count => 1 });
q1("SELECT hubsync.backfill('contacts')");
ok($node->poll_query_until('postgres',
	"SELECT state <> 'running' FROM hubsync.backfills WHERE object_type = 'contacts'"), 'cursor: the backfill stopped');
my @sent = grep { $_->{method} eq 'GET' && ($_->{query} // '') =~ /after=/ }
	@{ $fake->control('GET', "requests?since=$seq")->{requests} };
ok(scalar(@sent) >= 1, 'cursor: hubsync followed the cursor');
like($sent[0]{query} // '', qr/(^|&)after=a%26b%3Dc%2Fd%23e%20f%3Fg(&|$)/, 'cursor: it went back URL-encoded');
unlike(join(' ', map { $_->{query} // '' } @sent), qr/(^|&)b=c/, 'cursor: no parameter smuggled into the URL');
is(q1("SELECT backfill FROM hubsync.status WHERE object_type = 'contacts'"), 'failed',
	'cursor: hubsync.status shows the failed backfill');
like(q1("SELECT backfill_error FROM hubsync.status WHERE object_type = 'contacts'"), qr/HTTP 400/,
	'cursor: with HubSpot\'s refusal of that cursor');

# a garbage timestamp in a list page: recorded, not a worker restart
faults({ garble => 'timestamp', match => '/crm/v3/objects/contacts', method => 'GET', count => 1000 });
q1("SELECT hubsync.backfill('contacts')");
ok($node->poll_query_until('postgres',
	"SELECT state <> 'running' FROM hubsync.backfills WHERE object_type = 'contacts'"), 'timestamp: the backfill stopped');
like(q1("SELECT backfill_error FROM hubsync.status WHERE object_type = 'contacts'"),
	qr/HubSpot's answer has a missing or unusable updatedAt/, 'timestamp: the backfill error says why');
faults();
q1("SELECT hubsync.backfill('contacts')");
ok($node->poll_query_until('postgres',
	"SELECT state = 'done' FROM hubsync.backfills WHERE object_type = 'contacts'"),
	'once HubSpot answers properly, the backfill completes');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE email LIKE 'b%\@backfill.test'"), 150, 'with every record');
is_deeply(HubSync::Node::worker_pids($node), $pids, 'backfill garbage: the same worker processes');

# ---- reconciliation: a 10 kB cursor is refused, not sent ----
$seq = $fake->control('GET', 'requests?since=0')->{lastSeq};
faults({ garble => 'cursor', cursorBytes => 10240, match => '/crm/v3/objects/contacts', method => 'GET', count => 1 });
my ($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM hubsync.reconcile('contacts')");
like($err, qr/ERROR:  hubsync could not read contacts records from HubSpot/,
	'reconcile with a 10 kB cursor: the run (in the caller\'s session) fails cleanly');
like($err, qr/could not list contacts records in HubSpot: HubSpot's answer has a paging cursor that is missing, empty, longer than 1024 bytes/,
	'reconcile: the WARNING says why');
ok(!(grep { length($_->{query} // '') > 5000 } @{ $fake->control('GET', "requests?since=$seq")->{requests} }),
	'reconcile: the cursor was never sent');
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM hubsync.reconcile('contacts')");
is($ret, 0, 'reconcile: runs again once HubSpot answers properly');

# ---- Retry-After on a 477: bounded to a day, never overflowing ----
my %retry = ('100000000' => 'day', '9223372036854775807' => 'day', '99999999999999999999999' => 'day',
	'-5' => 'short', 'abc' => 'short', '12abc' => 'short');
for my $ra (sort keys %retry)
{
	faults({ status => 477, retryAfter => $ra, match => '/contacts/batch/', count => 1 });
	my $id = q1("INSERT INTO hubspot.contacts (email) VALUES ('ra" . length($ra) . "-$retry{$ra}-" . ($ra =~ s/\W//gr)
		. "\@hostile.test') RETURNING hubsync_id");
	ok($node->poll_query_until('postgres',
		"SELECT last_status = 477 FROM hubsync.outbox WHERE hubsync_id = '$id'"), "Retry-After $ra: the 477 is recorded");
	my $check = $retry{$ra} eq 'day'
		? "next_attempt_at BETWEEN now() + interval '23 hours' AND now() + interval '1 day 1 minute'"
		: "next_attempt_at < now() + interval '10 minutes'";
	is(q1("SELECT $check FROM hubsync.outbox WHERE hubsync_id = '$id'"), 't',
		"Retry-After $ra: the retry is " . ($retry{$ra} eq 'day' ? 'at most a day away' : 'soon (header ignored)'));
	q1("UPDATE hubsync.outbox SET next_attempt_at = now() WHERE hubsync_id = '$id'");
	ok($node->poll_query_until('postgres',
		"SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
		"Retry-After $ra: pushed once due");
}

# ---- OAuth: garbage in the token answer is never stored or sent ----
{
	my @bad = ({ access_token => "CJTbad\r\nX-Evil: 1", expires_in => 1800, refresh_token => 'r' },
		{ access_token => 'CJTgood', expires_in => 'abc' },
		{ access_token => 'CJTgood', expires_in => -5 },
		{ access_token => 'CJTgood', expires_in => 1e30 },
		[ 'not', 'an', 'object' ]);
	faults(map { { status => 200, body => $_, contentType => 'application/json', match => '/oauth/v1/token' } } @bad);
	my $seq = $fake->control('GET', 'requests?since=0')->{lastSeq};
	$node->safe_psql('postgres', "SET log_statement = 'none'; SELECT hubsync.set_credentials(access_token => '',
		oauth_client_id => 'hubsync-client-id', oauth_client_secret => 'hubsync-oauth-secret',
		oauth_refresh_token => 'hubsync-refresh-token')");
	my $id = q1("INSERT INTO hubspot.contacts (email) VALUES ('oauth\@hostile.test') RETURNING hubsync_id");
	ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$id'"),
		'oauth: pushed once the token endpoint answers properly');
	my @tok = grep { $_->{path} eq '/oauth/v1/token' } @{ $fake->control('GET', "requests?since=$seq")->{requests} };
	is(scalar(grep { $_->{status} == 200 } @tok), scalar(@bad) + 1, 'oauth: every garbage answer was taken as a failure');
	like(q1('SELECT oauth_access_token FROM hubsync._credentials'), qr/^[A-Za-z0-9._~+\/=-]+$/,
		'oauth: the stored token is a real one');
	ok($node->log_contains('answered 200 without a usable access_token and expires_in'), 'oauth: the garbage was logged');
}

# ---- nobody crashed ----
is_deeply(HubSync::Node::worker_pids($node), $pids, 'the same worker processes throughout');
ok(!$node->log_contains('terminated by signal|exited with exit code|invalid input syntax'),
	'no worker died, no input syntax ERROR');

done_testing();
