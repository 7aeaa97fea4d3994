# A backfill that gives up after transient errors (HubSpot answering 503
# to every list page, past the 20 consecutive failures it tolerates) is
# marked failed with its reason, raises the backfill_failed alert (the
# reason stays out of the payload), and keeps its cursors: once HubSpot
# answers again, hubsync.backfill() resumes where it stopped -- the pages
# already imported are not read again -- and completes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('backfill_resume',
	fake_config => { burstLimit => 1000, searchPerSecond => 50 },
	conf => { 'hubsync.rate_limit' => 1000, 'hubsync.search_rate' => 50,
		'hubsync.poll_interval' => '1h', 'hubsync.max_inflight' => 1 });

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub faults { $fake->control('POST', 'faults', { clear => JSON::PP::true, queue => [@_] }); }

my $n = 3000;
$fake->control('POST', 'seed', { objectType => 'contacts', count => $n,
	properties => { email => 'r{n}@resume.test', firstname => 'F{n}' } });
ok(HubSync::Node::wait_for_workers($node), 'workers run');

# list pages of contacts: the first 10 answer, then HubSpot fails for good
my $list = sub { grep { $_->{method} eq 'GET' && $_->{path} eq '/crm/v3/objects/contacts'
	&& ($_->{query} // '') !~ /archived=true/ } @_ };
faults({ status => 503, match => '/crm/v3/objects/contacts', method => 'GET', skip => 10, count => 1000000 });
is(q1("SELECT string_agg(b, ',') FROM hubsync.backfill('contacts') b"), 'contacts', 'backfill started');
ok($node->poll_query_until('postgres',
	"SELECT state = 'failed' FROM hubsync.backfills WHERE object_type = 'contacts'"),
	'the backfill failed after HubSpot kept answering 503');
my $done = q1("SELECT done FROM hubsync.backfills WHERE object_type = 'contacts'");
ok($done >= 500 && $done < $n, "it had imported part of the records ($done)");
is(q1("SELECT count(*) FROM hubspot.contacts"), $done, 'those records are in the mirror');
is(q1("SELECT backfill FROM hubsync.status WHERE object_type = 'contacts'"), 'failed', 'hubsync.status shows it');
like(q1("SELECT backfill_error FROM hubsync.status WHERE object_type = 'contacts'"), qr/503/,
	'with the reason in backfill_error');
is(q1("SELECT streams IS NOT NULL FROM hubsync.backfills WHERE object_type = 'contacts'"), 't',
	'its cursors are kept');

# the alert: once, with the type, pointing to the reason
is(q1("SELECT count(*) || '|' || min(sent) FROM hubsync.alerts WHERE alert = 'backfill_failed' AND key = 'contacts'"),
	'1|1', 'backfill_failed alert sent once');
my $payload = q1("SELECT payload FROM hubsync.alerts WHERE alert = 'backfill_failed'");
like($payload, qr/"object_type": "contacts"/, 'the alert names the type');
like($payload, qr/backfill_error/, 'and points to hubsync.status.backfill_error');
unlike($payload, qr/503|Service|unavailable/i, 'HubSpot\'s text stays out of the alert');

# HubSpot answers again: backfill() resumes from the cursors
faults();
my $seq = $fake->control('GET', 'requests?since=0')->{lastSeq};
is(q1("SELECT string_agg(b, ',') FROM hubsync.backfill('contacts') b"), 'contacts', 'backfill started again');
is(q1("SELECT done FROM hubsync.backfills WHERE object_type = 'contacts'"), $done, 'it keeps its count');
ok($node->poll_query_until('postgres',
	"SELECT state = 'done' FROM hubsync.backfills WHERE object_type = 'contacts'"), 'and completes');
is(q1("SELECT count(*) FROM hubspot.contacts"), $n, 'every record imported');
is(q1("SELECT count(DISTINCT hs_object_id) FROM hubspot.contacts"), $n, 'once');
is(q1("SELECT done FROM hubsync.backfills WHERE object_type = 'contacts'"), $n, 'done counts every record once');
my @sent = $list->(@{ $fake->control('GET', "requests?since=$seq")->{requests} });
is(scalar(grep { ($_->{query} // '') !~ /(^|&)after=/ } @sent), 0,
	'the resumed backfill did not read the first page again');
my $pages = int(($n - $done) / 100) + 2;
ok(scalar(@sent) <= $pages, 'it read only the pages left (' . scalar(@sent) . " <= $pages, a restart reads " . ($n / 100) . ')');

$node->stop;
$fake->stop;
done_testing();
