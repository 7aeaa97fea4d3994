# Push error handling against the fake's faults: 429, 423, 5xx, hangs,
# resets, malformed answers, 207, 400, 401 and 404 -- every change ends in
# HubSpot or in dead_letters with the reason, never lost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use JSON::PP;

my ($node, $fake) = HubSync::Node::with_fake('pusherr', conf => {
	'hubsync.max_attempts' => 3,
	'hubsync.retry_window' => '0',
	'hubsync.request_timeout' => '1500ms',
});
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $n = 0;

# new_contact -- insert a contact and return its hubsync_id
sub new_contact
{
	my ($props) = @_;
	$n++;
	return $sql->("INSERT INTO hubspot.contacts (email, firstname, properties)
		VALUES ('c$n\@example.com', 'C$n', '" . ($props || '{}') . "') RETURNING hubsync_id");
}

# in_hubspot -- the fake's record for a local contact (after sync)
sub in_hubspot
{
	my ($id) = @_;
	my $hs = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$id'");
	return $hs ? $fake->control('GET', "records/contacts/$hs") : undef;
}

# warm up: the hubsync_id property exists before faults are injected
my $c0 = new_contact();
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up contact pushed');

for my $case (
	[ '429 ten-secondly', { status => 429, match => '/batch/' } ],
	[ '423 locked', { status => 423, match => '/batch/' } ],
	[ '500', { status => 500, match => '/batch/' } ],
	[ '502 edge HTML', { status => 502, match => '/batch/' } ],
	[ '503', { status => 503, match => '/batch/' } ],
	[ '504', { status => 504, match => '/batch/' } ],
	[ 'hang past the timeout', { hang => JSON::PP::true, match => '/batch/' } ],
	[ 'connection reset', { reset => JSON::PP::true, match => '/batch/' } ],
	[ 'malformed JSON', { malformed => JSON::PP::true, match => '/batch/' } ],
	[ '207 partial failure', { partial207 => JSON::PP::true, match => '/batch/' } ])
{
	my ($name, $fault) = @$case;
	$fake->control('POST', 'faults', { queue => [$fault] });
	my $id = new_contact();
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox', 't'),
		"$name: retried until sent");
	my $rec = in_hubspot($id);
	ok($rec && $rec->{properties}{hubsync_id} eq $id, "$name: record in HubSpot once");
	is($sql->('SELECT count(*) FROM hubsync.dead_letters'), '0', "$name: no dead letter");
}
is($fake->control('GET', 'counters')->{duplicates}{hubsync_id}, 0, 'no duplicates after all the faults');

# a 400 for a whole batch: each record is resent alone, the good ones go
# through (here all, as the fault fires once)
$node->safe_psql('postgres', q{SELECT hubsync.pause('contacts')});
my @alone = map { new_contact() } 1 .. 3;
$fake->control('POST', 'faults', { queue => [ { status => 400, match => '/batch/' } ] });
$node->safe_psql('postgres', q{SELECT hubsync.resume('contacts')});
ok(HubSync::Node::wait_outbox_empty($node), '400 for a batch of 3: drained');
is(scalar(grep { in_hubspot($_) } @alone), 3, '400 for a batch of 3: each resent alone and sent');
is($sql->('SELECT count(*) FROM hubsync.dead_letters'), '0', '400 for a batch of 3: no dead letter');

# a 400 for a lone record is a dead letter at once
$fake->control('POST', 'faults', { queue => [ { status => 400, match => '/batch/' } ] });
my $refused = new_contact();
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$refused'"),
	'400 for a lone record: dead-lettered');
is($sql->("SELECT attempts FROM hubsync.dead_letters WHERE hubsync_id = '$refused'"), '1', 'on the first attempt');
$sql->("SELECT hubsync.discard_dead_letters(hubsync_id => '$refused')");

# a 429 is not a failed attempt: with max_attempts = 3, four 429s in a row
# still end in HubSpot (the secondly policy waits 1 s each)
$fake->control('POST', 'faults', { queue => [ { status => 429, policy => 'SECONDLY', match => '/batch/', count => 4 } ] });
my $patient = new_contact();
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.outbox', 't'), '4 x 429: sent');
ok(in_hubspot($patient), '4 x 429: in HubSpot, not dead-lettered');

# 5xx past max_attempts (and retry_window 0): dead letter with the reason
$fake->control('POST', 'faults', { queue => [ { status => 503, match => '/batch/', count => 3 } ] });
my $doomed = new_contact();
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$doomed'"),
	'503 x 3: dead-lettered after max_attempts');
is($sql->("SELECT status || ' ' || attempts || ' ' || CASE WHEN message LIKE 'gave up after 3 attempts%' THEN 'gave up' END FROM hubsync.dead_letters WHERE hubsync_id = '$doomed'"),
	'503 3 gave up', 'dead letter keeps status, attempts and message');
is($sql->("SELECT status FROM hubsync.record_status WHERE hubsync_id = '$doomed'"), 'failed', 'record_status failed');
is($sql->("SELECT hubsync.retry_dead_letters(hubsync_id => '$doomed')"), '1', 'retry_dead_letters re-queues it');
ok(HubSync::Node::wait_outbox_empty($node), 're-queued change sent');
ok(in_hubspot($doomed), 'dead letter retried into HubSpot');

# a validation error dead-letters that record at once; the rest of its
# batch goes through
$node->safe_psql('postgres', q{SELECT hubsync.pause('contacts')});
my @ok = map { new_contact() } 1 .. 3;
my $bad = new_contact('{"no_such_property": "x"}');
$node->safe_psql('postgres', q{SELECT hubsync.resume('contacts')});
ok(HubSync::Node::wait_outbox_empty($node), 'mixed batch drained');
is($sql->("SELECT category || ' ' || status FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"),
	'VALIDATION_ERROR 200', 'bad record dead-lettered with HubSpot category (2026-09: errors in a 200 body)');
like($sql->("SELECT message FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"), qr/no_such_property/,
	'dead letter keeps HubSpot message');
like($sql->("SELECT request::text FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"), qr/no_such_property/,
	'dead letter keeps the request');
is(scalar(grep { in_hubspot($_) } @ok), 3, 'the rest of the batch reached HubSpot');

# a record whose create was refused is never created piecemeal: a later
# update sends the whole row again (refused again while the email is bad),
# and once the app fixes the email the record arrives whole
my $refused_create = $sql->("INSERT INTO hubspot.contacts (email, firstname, city)
	VALUES ('not-an-email', 'Whole', 'Town') RETURNING hubsync_id");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$refused_create'"), 'a bad email: dead-lettered');
$sql->("UPDATE hubspot.contacts SET firstname = 'Whole2' WHERE hubsync_id = '$refused_create'");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM hubsync.dead_letters WHERE hubsync_id = '$refused_create'"),
	'a later update of it: refused again');
my $resent = $sql->("SELECT request::text FROM hubsync.dead_letters WHERE hubsync_id = '$refused_create' ORDER BY id DESC LIMIT 1");
ok($resent =~ /not-an-email/ && $resent =~ /Town/, 'the update carried the whole row');
is(scalar(grep { ($_->{properties}{hubsync_id} // '') eq $refused_create }
		@{ $fake->control('GET', 'records/contacts?limit=1000')->{results} }), 0,
	'no record was created without its email');
$sql->("UPDATE hubspot.contacts SET email = 'fixed\@example.com' WHERE hubsync_id = '$refused_create'");
ok(HubSync::Node::wait_outbox_empty($node), 'the fixed record was pushed');
my $whole = in_hubspot($refused_create);
is(join('|', map { $whole->{properties}{$_} // '' } qw(email firstname city)), 'fixed@example.com|Whole2|Town',
	'it arrived whole');

# 404: a rep deleted the record in HubSpot meanwhile.  Not a fault: the
# deletion wins, the update is dropped and recorded as a conflict, nothing
# is dead-lettered and nothing recreates the record.
my $gone_hs = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$ok[0]'");
$fake->control('POST', "ui/contacts/$gone_hs/delete", {});
$sql->("UPDATE hubspot.contacts SET firstname = 'Ghost' WHERE hubsync_id = '$ok[0]'");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.conflicts WHERE hubsync_id = '$ok[0]'"),
	'update of a record deleted in HubSpot recorded as a conflict');
is($sql->("SELECT property || ' ' || local_value || ' ' || resolution FROM hubsync.conflicts WHERE hubsync_id = '$ok[0]'"),
	'firstname Ghost dropped: the record was deleted in HubSpot', 'the conflict names the property, our value and why');
is($sql->("SELECT count(*) FROM hubsync.dead_letters WHERE hubsync_id = '$ok[0]'"), '0', 'nothing dead-lettered');
ok(HubSync::Node::wait_outbox_empty($node), 'the dropped update left the outbox');
is($fake->control('GET', "records/contacts/$gone_hs")->{archived} ? 1 : 0, 1, 'the record stays deleted in HubSpot');

# a whole-request 404: HubSpot's JSON error body (OBJECT_NOT_FOUND), or an
# empty untyped body -- either way a dead letter with a reason, no crash
for my $shape (
	[ 'JSON', { contentType => 'application/json', body => { status => 'error',
		message => 'Object not found.  objectId are usually numeric.', category => 'OBJECT_NOT_FOUND',
		correlationId => 'c0ffee00-0000-4000-8000-000000000404' } },
	  'OBJECT_NOT_FOUND Object not found.  objectId are usually numeric.' ],
	[ 'empty', { body => '' }, 'OBJECT_NOT_FOUND HubSpot has no such record' ])
{
	my ($name, $fault, $want) = @$shape;
	my $hid = new_contact();
	ok(HubSync::Node::wait_outbox_empty($node), "404 $name body: contact created first");
	$fake->control('POST', 'faults', { queue => [ { status => 404, match => '/contacts/batch/update', %$fault } ] });
	$sql->("UPDATE hubspot.contacts SET firstname = 'Missing' WHERE hubsync_id = '$hid'");
	ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$hid'"),
		"404 with a $name body: dead-lettered");
	is($sql->("SELECT status || ' ' || category || ' ' || message FROM hubsync.dead_letters WHERE hubsync_id = '$hid'"),
		"404 $want", "404 with a $name body: status, category and message kept");
	$sql->("SELECT hubsync.discard_dead_letters(hubsync_id => '$hid')");
}

# 401: pushing stops, nothing is burned or dead-lettered; new credentials resume it
$sql->("SELECT hubsync.set_credentials(access_token => 'revoked-token')");
my $dead_before = $sql->('SELECT count(*) FROM hubsync.dead_letters');
my $waiting = new_contact();
ok($node->poll_query_until('postgres', "SELECT last_status = 401 FROM hubsync.outbox WHERE hubsync_id = '$waiting'"),
	'401 recorded on the pending change');
my $seq = $fake->control('GET', 'requests')->{lastSeq};
new_contact();
sleep 2;
is(scalar(grep { $_->{path} =~ /batch/ } @{ $fake->control('GET', "requests?since=$seq")->{requests} }), 0,
	'no further requests while credentials are refused');
is($sql->("SELECT attempts FROM hubsync.outbox WHERE hubsync_id = '$waiting'"), '0', 'the 401 burned no attempt');
is($sql->("SELECT DISTINCT auth FROM hubsync.status"), 'refused', 'hubsync.status shows the auth failure');
is($sql->('SELECT count(*) FROM hubsync.dead_letters'), $dead_before, 'nothing dead-lettered on 401');
ok($node->log_contains('HubSpot refused hubsync.s credentials'), '401 logged once with a hint');
$sql->("SELECT hubsync.set_credentials(access_token => 'test-token')");
ok(HubSync::Node::wait_outbox_empty($node), 'new credentials resume pushing at once');
is($sql->("SELECT DISTINCT auth FROM hubsync.status"), 'ok', 'hubsync.status shows auth ok again');
ok(in_hubspot($waiting), 'waiting change reached HubSpot');
# the test cluster logs every statement (and so the set_credentials calls);
# hubsync's own messages must not carry a token
my @own = grep { !/statement:/ && !/^\s/ } split /\n/, slurp_file($node->logfile);
is(scalar(grep { /revoked-token|test-token/ } @own), 0, 'no token in hubsync\'s log messages');

$node->stop;
$fake->stop;
done_testing();
