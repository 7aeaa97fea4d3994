# Pausing one object type never holds up another, and hubsync.await_synced
# and hubsync.record_status tell a paused record, an unknown id and idle
# workers apart from a record still on its way.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('pause_isolation');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# wait_until -- poll a query for at most $secs seconds; true when it held
my $wait_until = sub {
	my ($query, $secs) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		return 1 if $sql->($query) eq 't';
		usleep(100_000);
	}
	return 0;
};

# a company in HubSpot, for associations
my $company = $sql->("INSERT INTO hubspot.companies (name) VALUES ('Acme') RETURNING hubsync_id");
ok($wait_until->("SELECT hs_object_id IS NOT NULL FROM hubspot.companies WHERE hubsync_id = '$company'", 30),
	'company pushed');
my $company_id = $sql->("SELECT hs_object_id FROM hubspot.companies WHERE hubsync_id = '$company'");

# A backlog of 4,000 contacts (more than one claim takes: batch_size 100 x
# max_inflight 8, four rows each) is held by a pause, each with an
# association to the company waiting for its create (more than one
# association claim takes: 500, four rows each).
$sql->("SELECT hubsync.pause('contacts')");
$sql->("INSERT INTO hubspot.contacts (email, firstname)
	SELECT 'c' || g || '\@example.com', 'C' || g FROM generate_series(1, 4000) g");
$sql->("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_id, type_id)
	SELECT 'contacts', hubsync_id, 'companies', $company_id, 279 FROM hubspot.contacts");
is($sql->("SELECT count(*) FROM hubsync.association_outbox"), '4000', '4,000 contact associations queued');
my $c1 = $sql->("SELECT hubsync_id FROM hubspot.contacts WHERE email = 'c1\@example.com'");
my $seq = $fake->control('GET', 'requests')->{lastSeq};

# a deal leaves at once, past the paused backlog
my $t0 = time;
my $deal = $sql->("INSERT INTO hubspot.deals (dealname) VALUES ('Isolated') RETURNING hubsync_id");
ok($wait_until->("SELECT hs_object_id IS NOT NULL FROM hubspot.deals WHERE hubsync_id = '$deal'", 5),
	'a deal reaches HubSpot within 5 s while 4,000 paused contacts are queued');
note(sprintf('deal pushed after %.2f s', time - $t0));
is($sql->("SELECT count(*) FROM hubsync.outbox WHERE object_type = 'contacts'"), '4000',
	'the paused contacts stay queued');
my $reqs = $fake->control('GET', "requests?since=$seq")->{requests};
is(scalar(grep { $_->{path} =~ m{/objects/contacts/} } @$reqs), 0, 'no contact was sent');
is($sql->("SELECT await_synced FROM hubsync.await_synced('deals', '$deal', '5s')"), 'synced',
	'await_synced: the deal is synced');

# an association of the deal leaves too, past the paused type's entries
$t0 = time;
$sql->("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_id, type_id)
	VALUES ('deals', '$deal', 'companies', $company_id, 341)");
ok($wait_until->("SELECT count(*) = 0 FROM hubsync.association_outbox WHERE from_type = 'deals'", 8),
	'the deal\'s association reaches HubSpot within 8 s while 4,000 paused contacts\' associations wait');
note(sprintf('deal association pushed after %.2f s', time - $t0));
my $deal_id = $sql->("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$deal'");
ok((grep { $_->{id} == $company_id } @{ $fake->control('GET', "records/deals/$deal_id")->{associations}{companies} || [] }),
	'deal -> company in HubSpot');
is($sql->("SELECT count(*) FROM hubsync.association_outbox WHERE from_type = 'contacts' AND state = 'pending'"), '4000',
	'the contacts\' associations wait');

# a paused record says paused, in record_status and when await_synced times out
is($sql->("SELECT status FROM hubsync.record_status WHERE hubsync_id = '$c1'"), 'paused',
	'record_status: a record held by a pause is paused');
is($sql->("SELECT hubsync.await_synced('contacts', '$c1', '200ms')"), 'paused',
	'await_synced: paused on timeout while its type is paused');

# an unknown id, or an id under another type, is an error, not "synced"
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT hubsync.await_synced('contacts', '00000000-0000-0000-0000-00000000dead', '1s')");
isnt($ret, 0, 'await_synced: an unknown id fails');
like($err, qr/hubsync knows no contacts record with hubsync_id 00000000-0000-0000-0000-00000000dead/,
	'the error names the type and the id');
like($err, qr/HINT:  Check the object type and the id/, 'with a hint');
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT hubsync.await_synced('contacts', '$deal', '1s')");
isnt($ret, 0, 'await_synced: a deal asked for as a contact fails');
like($err, qr/ERROR:  P0002: hubsync knows no contacts record/, 'errcode no_data_found');
like($err, qr/HINT:  It is a deals record: call hubsync.await_synced\('deals'/, 'the hint names its type');

# resume: the contacts drain
$sql->("SELECT hubsync.resume('contacts')");
ok(HubSync::Node::wait_outbox_empty($node), 'resumed contacts drain');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.association_outbox"),
	'and their associations');
is($sql->("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id IS NOT NULL"), '4000',
	'every contact reached HubSpot');
is($sql->("SELECT hubsync.await_synced('contacts', '$c1', '1s')"), 'synced', 'await_synced: synced after resume');

# workers disabled: await_synced says so instead of waiting out its timeout
$sql->("ALTER SYSTEM SET hubsync.enabled = off; SELECT pg_reload_conf()");
ok(HubSync::Node::wait_for_state($node, 'hubsync push', 'idle: disabled'), 'push worker idle: disabled');
my $ann = $sql->("INSERT INTO hubspot.contacts (email) VALUES ('ann\@example.com') RETURNING hubsync_id");
$t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SELECT hubsync.await_synced('contacts', '$ann', '30s')");
isnt($ret, 0, 'await_synced fails while hubsync.enabled is off');
ok(time - $t0 < 10, 'at once, not after its timeout');
like($err, qr/hubsync cannot sync contacts record $ann: hubsync.enabled is off/, 'the error says why');
like($err, qr/HINT:  Set hubsync.enabled = on/, 'the hint says what to do');
$sql->("ALTER SYSTEM RESET hubsync.enabled; SELECT pg_reload_conf()");
is($sql->("SELECT hubsync.await_synced('contacts', '$ann', '30s')"), 'synced', 'enabled again: synced');

# the workers serve another database
$sql->("CREATE DATABASE other");
$node->safe_psql('other', "CREATE EXTENSION hubsync");
my $other = $node->safe_psql('other', "INSERT INTO hubspot.contacts (email) VALUES ('o\@example.com') RETURNING hubsync_id");
($ret, $out, $err) = $node->psql('other', "SELECT hubsync.await_synced('contacts', '$other', '30s')");
isnt($ret, 0, 'await_synced fails in a database the workers do not serve');
like($err, qr/its workers serve database "postgres", not "other"/, 'the error names both databases');

# not preloaded: no worker at all
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
$t0 = time;
($ret, $out, $err) = $node->psql('other', "SELECT hubsync.await_synced('contacts', '$other', '30s')");
isnt($ret, 0, 'await_synced fails without preload');
ok(time - $t0 < 10, 'at once');
like($err, qr/hubsync must be loaded via "shared_preload_libraries"/, 'the error says why');

$node->stop;
done_testing();
