# Without shared_preload_libraries: CREATE EXTENSION works, capture works,
# and functions that need the workers say what to do.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my $node = HubSync::Node::new_node('nopreload', no_preload => 1, create_extension => 1);
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%'"),
	'0', 'no workers without preload');

my ($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT * FROM hubsync.worker_status()');
isnt($ret, 0, 'worker_status() fails without preload');
like($stderr, qr/hubsync must be loaded via "shared_preload_libraries"/, 'error says why');
like($stderr, qr/HINT:  Add hubsync to shared_preload_libraries/, 'hint names the setting');

$node->safe_psql('postgres', "INSERT INTO hubspot.contacts (email) VALUES ('a\@example.com')");
is($node->safe_psql('postgres', 'SELECT op FROM hubsync.outbox'), 'create', 'capture still writes the outbox');
$node->safe_psql('postgres', "SELECT hubsync.set_credentials(access_token => 'x')");
is($node->safe_psql('postgres', 'SELECT access_token FROM hubsync.credentials_status'), 't', 'set_credentials works');

$node->stop;
done_testing();
