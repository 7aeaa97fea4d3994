# Housekeeping: the pull worker prunes applied and skipped inbox events
# and change feed rows past their retention, in batches, keeps failed and
# pending events and young rows, reports its table activity to the
# statistics system (so autovacuum sees it) and its current step in
# pg_stat_activity, and truncates a large outbox once it has drained.
# The hot queue tables carry their own autovacuum settings.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my $node = HubSync::Node::new_node('housekeeping', create_extension => 1, conf => {
	'hubsync.api_base_url' => 'http://127.0.0.1:9',
	'hubsync.housekeeping_interval' => '1s',
	'hubsync.inbox_retention' => '1h',
	'hubsync.changes_retention' => '1h',
});
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

like($sql->("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'hubsync.outbox'::regclass"),
	qr/fillfactor=50.*autovacuum_vacuum_scale_factor=0\.01/, 'outbox has its own autovacuum settings');
ok($sql->("SELECT count(*) FROM pg_class WHERE relnamespace = 'hubsync'::regnamespace
           AND relname IN ('outbox', 'inbox', 'changes', 'sync_state')
           AND array_to_string(reloptions, ',') LIKE '%autovacuum_%'") == 4,
	'outbox, inbox, changes and sync_state have autovacuum settings');

# 12,000 old change feed rows (more than two batches), 100 young ones
$sql->(q{
	INSERT INTO hubsync.changes (at, direction, object_type, hubsync_id, op, origin)
	SELECT now() - interval '2 hours', CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END,
	       CASE WHEN g % 3 = 0 THEN 'deals' ELSE 'contacts' END, gen_random_uuid(), 'update', 'test'
	FROM generate_series(1, 12000) g;
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, op, origin)
	SELECT 'out', 'contacts', gen_random_uuid(), 'update', 'young' FROM generate_series(1, 100);
});
# old applied and skipped events go; old failed and pending ones stay, and young ones
$sql->(q{
	INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id,
	                           occurred_at, event, state, received_at, applied_at, error)
	SELECT sha256(convert_to('k' || g, 'UTF8')), 'conversation.newMessage', NULL, g, 1,
	       '{}', s.state, now() - s.age, now() - s.age, CASE WHEN s.state = 'failed' THEN 'boom' END
	FROM generate_series(1, 6000) g,
	     LATERAL (SELECT CASE WHEN g <= 5000 THEN 'applied' WHEN g <= 5800 THEN 'skipped'
	                          ELSE 'failed' END AS state,
	                     CASE WHEN g % 100 = 0 THEN interval '1 minute' ELSE interval '2 hours' END AS age) s;
});
my $young_inbox = $sql->("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed' OR received_at > now() - interval '1 hour'");

ok($node->poll_query_until('postgres', "SELECT count(*) = 100 FROM hubsync.changes"),
	'change feed pruned to the rows younger than hubsync.changes_retention');
is($sql->("SELECT count(*) FROM hubsync.changes WHERE origin = 'young'"), '100', 'young change feed rows kept');
ok($node->poll_query_until('postgres', "SELECT count(*) = $young_inbox FROM hubsync.inbox"),
	'inbox pruned of old applied and skipped events');
is($sql->("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), '200', 'failed events are kept');

# the worker's deletes reach the statistics autovacuum works from
ok($node->poll_query_until('postgres',
	"SELECT n_tup_del >= 12000 FROM pg_stat_user_tables WHERE relid = 'hubsync.changes'::regclass"),
	'the pull worker reports its deletes to the statistics system');

# pg_stat_activity shows what the worker does: a step in words, never SQL
# (the pull worker moves on to polling between housekeeping rounds, so any
# of its steps will do)
ok($node->poll_query_until('postgres',
	"SELECT query ~ '^[a-z]+ [a-z ]+' AND query !~* '^(select|with|insert|update|delete|call) ' FROM pg_stat_activity WHERE backend_type = 'hubsync pull'"),
	'pg_stat_activity shows the pull worker\'s current step');

# a drained outbox gives its space back
$sql->("SELECT hubsync.pause('contacts')");
$sql->("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email) SELECT 'h' || g || '\@example.com' FROM generate_series(1, 60000) g");
my $big = $sql->("SELECT pg_total_relation_size('hubsync.outbox')");
ok($big > 8 * 1024 * 1024, "outbox grew to $big bytes");
$sql->("DELETE FROM hubsync.outbox");
ok($node->poll_query_until('postgres', "SELECT pg_total_relation_size('hubsync.outbox') < 1024 * 1024"),
	'the empty outbox is truncated');
$sql->("UPDATE hubspot.contacts SET firstname = 'After' WHERE email = 'h1\@example.com'");
is($sql->("SELECT count(*) FROM hubsync.outbox"), '1', 'changes queue as before after the truncation');

$node->stop;
done_testing();
