# HubSpot's list cursors are opaque: backfill cuts the id range into
# streams only when the cursors behave as ids, and checks the import
# against HubSpot's count before calling it done.  The fake's list cursor
# modes: "offset" (numbers that are positions, not ids), "opaque" (base64
# tokens) and "issued" (ids, but a cursor it never handed out gives an
# empty page): each backfill imports every record, none ends early.  When
# records stay missing even page by page, the backfill fails with the
# counts (alert backfill_failed), never "done".
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my $N = 3000;
my ($node, $fake) = HubSync::Node::with_fake('bfcursor',
	fake_config => { burstLimit => 1000, searchPerSecond => 50, searchIndexLagMs => 0 },
	conf => { 'hubsync.rate_limit' => 1000, 'hubsync.search_rate' => 50,
		'hubsync.poll_interval' => '1h', 'hubsync.max_inflight' => 4 });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# backfill -- backfill a type under a cursor mode (seeding $N records first
# unless told not to)
sub backfill
{
	my ($mode, $type, $props) = @_;
	$fake->configure(listCursor => $mode);
	$fake->control('POST', 'seed', { objectType => $type, count => $N, properties => $props }) if $props;
	is(q1("SELECT string_agg(b, ',') FROM hubsync.backfill('$type') b"), $type, "$mode: backfill of $type started");
	ok($node->poll_query_until('postgres',
		"SELECT state <> 'running' FROM hubsync.backfills WHERE object_type = '$type'"), "$mode: backfill ended");
	is(q1("SELECT state FROM hubsync.backfills WHERE object_type = '$type'"), 'done', "$mode: and is done");
	is(q1("SELECT count(*) FROM hubspot.$type WHERE hs_object_id IS NOT NULL"), $N, "$mode: every record imported");
}

# records HubSpot counts but the list never gives (a list that ends
# early): the backfill fails with the counts, it does not say done
$fake->control('POST', 'seed', { objectType => 'companies', count => $N, properties => { name => 'Co {n}' } });
$fake->control('POST', 'faults', { queue => [ { status => 200, match => '/crm/v3/objects/companies',
	method => 'GET', skip => 2, count => 1000, contentType => 'application/json',
	body => { results => [] } } ] });
q1("SELECT hubsync.backfill('companies')");
ok($node->poll_query_until('postgres',
	"SELECT state <> 'running' FROM hubsync.backfills WHERE object_type = 'companies'"), 'short list: backfill ended');
like(q1("SELECT state || ': ' || last_error FROM hubsync.backfills WHERE object_type = 'companies'"),
	qr/^failed: the import ended with \d+ records here, HubSpot counts $N$/, 'short list: failed with the counts');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubsync.alerts WHERE alert = 'backfill_failed' AND key = 'companies'"),
	'short list: backfill_failed alert');
$fake->control('DELETE', 'faults');

backfill('offset', 'companies');
backfill('opaque', 'deals', { dealname => 'Deal {n}' });
backfill('issued', 'contacts', { email => 'c{n}@cursor.test' });
ok($node->log_contains('reading the list again on HubSpot.s own cursors'),
	'issued: the made-up cursors fell short, noticed by the count, read again page by page');

$node->stop;
$fake->stop;
done_testing();
