# The Webhooks Journal, hubsync's third inbound path (issue 24), against
# the fake HubSpot's journal: hubsync creates the journal subscriptions of
# the mirrored types; a rep's change arrives through the journal with the
# receiver off; the entry files are downloaded with no Authorization
# header; echoes of our pushes change nothing; a crash (kill -9 of the pull
# worker) mid-read neither loses nor repeats an event; webhooks and the
# journal together store and apply each change once; an expired offset
# raises an alert, makes the poller catch up and restarts from the latest
# entry; under api_version = legacy the journal is not read and says why.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('journal',
	fake_config => { searchIndexLagMs => 0 },
	conf => {
		'hubsync.journal_interval' => '200ms',
		'hubsync.portal_id' => 62515,
		'hubsync.poll_interval' => '1h',
		'hubsync.poll_trailing_interval' => '1h',
		'hubsync.poll_archived_interval' => '1h',
		'hubsync.poll_association_interval' => '1h' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub journal { return $fake->control('GET', 'journal'); }

# ---- subscriptions: one OBJECT and one ASSOCIATION per mirrored type ----
my $types = q1("SELECT count(*) FROM hubsync.object_types");
ok($node->poll_query_until('postgres',
	"SELECT count(*) FILTER (WHERE state = 'active') = 2 * $types FROM hubsync.journal_subscriptions"),
	'the journal subscriptions of every mirrored type are active');
my $subs = journal()->{subscriptions};
is(scalar(@$subs), 2 * $types, 'the fake holds one subscription per row');
my ($contact_sub) = grep { $_->{objectTypeId} eq '0-1' && $_->{subscriptionType} eq 'OBJECT' } @$subs;
is_deeply([ sort @{ $contact_sub->{actions} } ], [qw(CREATE DELETE MERGE RESTORE UPDATE)],
	'the contacts OBJECT subscription covers creations, changes, deletions, merges, restores');
is(q1("SELECT hubspot_id FROM hubsync.journal_subscriptions WHERE object_type = 'contacts' AND subscription_type = 'OBJECT'"),
	$contact_sub->{id}, 'HubSpot\'s subscription id is kept');
ok($node->poll_query_until('postgres', "SELECT started FROM hubsync.journal_state"),
	'reading has started');

# ---- a rep's change arrives through the journal (no receiver) ----
my $c = $fake->control('POST', 'ui/contacts', { properties => { email => 'j1@journal.test', firstname => 'Jay' } });
my $id = $c->{id};
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND firstname = 'Jay'"),
	'a contact created by a rep arrives through the journal');
$fake->control('POST', "ui/contacts/$id", { properties => { firstname => 'Jules' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND firstname = 'Jules'"),
	'a rep\'s edit arrives through the journal');
ok(q1("SELECT count(*) > 0 FROM hubsync.inbox WHERE event ->> 'hubsyncSource' = 'journal' AND object_id = $id") eq 't',
	'the events came from the journal');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events');
my $counters = journal()->{counters};
ok($counters->{downloads} > 0, 'entry files were downloaded');
is($counters->{downloadsRefusedAuth}, 0, 'no download carried an Authorization header');
my $log = $fake->control('GET', 'requests');
my @dl = grep { ($_->{path} // '') =~ m{^/_journal-files/} } @{ $log->{requests} };
ok(scalar(@dl) > 0, 'the downloads went to the pre-signed URLs');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'nothing pushed back');

# ---- merges, deletions and associations come through the journal too ----
my $m1 = $fake->control('POST', 'ui/contacts', { properties => { email => 'm1@journal.test' } })->{id};
my $m2 = $fake->control('POST', 'ui/contacts', { properties => { email => 'm2@journal.test' } })->{id};
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM hubspot.contacts WHERE hs_object_id IN ($m1, $m2)"), 'two contacts arrive');
my $m1_hid = q1("SELECT hubsync_id FROM hubspot.contacts WHERE hs_object_id = $m1");
my $merged = $fake->control('POST', 'ui/contacts/merge', { primaryObjectId => $m1, objectIdToMerge => $m2 });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubspot.contacts WHERE hs_object_id IN ($m1, $m2)"),
	'a merge made by a rep arrives: the merged-away rows are gone');
ok($node->poll_query_until('postgres',
	"SELECT hubsync_id = '$m1_hid' FROM hubspot.contacts WHERE hs_object_id = $merged->{id}"),
	'the survivor keeps the primary\'s local row');
my $co = $fake->control('POST', 'ui/companies', { properties => { name => 'Journal Inc', domain => 'journal.test' } })->{id};
$fake->control('POST', 'ui/associations', { fromObjectType => 'contacts', fromObjectId => $merged->{id},
	toObjectType => 'companies', toObjectId => $co });
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubspot.associations WHERE from_id = $merged->{id} AND to_id = $co"),
	'an association a rep adds arrives');
$fake->control('POST', "ui/contacts/$merged->{id}/delete", {});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM hubspot.contacts WHERE hs_object_id = $merged->{id}"),
	'a deletion arrives');

# ---- an entry file that is not JSON (a bad transfer) is read again ----
$fake->control('POST', 'faults', { queue => [ { malformed => JSON::PP::true, match => '/_journal-files/' } ] });
$fake->control('POST', "ui/contacts/$id", { properties => { city => 'Garbled' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND city = 'Garbled'"),
	'a change whose file first came back garbled arrives when the entry is read again');
is($fake->control('GET', 'faults')->{fired}, 1, '(the garbled answer was sent)');

# ---- an echo of our own push changes nothing ----
q1("UPDATE hubspot.contacts SET lastname = 'Ours' WHERE hs_object_id = $id");
ok(HubSync::Node::wait_outbox_empty($node), 'the local change is pushed');
is($fake->control('GET', "records/contacts/$id")->{properties}{lastname}, 'Ours', 'HubSpot has it');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hubsync.inbox WHERE object_id = $id AND property_name = 'lastname' AND state <> 'pending'"),
	'the echo came back through the journal');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'the echo queued no push (no loop)');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'in' AND hs_object_id = $id AND properties ? 'lastname'"),
	0, 'the echo changed nothing locally');

# ---- kill -9 of the pull worker mid-read: nothing lost, nothing repeated ----
my $entries_before = q1("SELECT entries FROM hubsync.journal_state");
my $made_before = journal()->{counters}{entries};
my $fired_before = $fake->control('GET', 'faults')->{fired};
$fake->control('POST', 'faults', { queue => [ { hang => JSON::PP::true, ms => 8000, match => '/_journal-files/' } ] });
my @ids;
for my $n (1 .. 3)
{
	push @ids, $fake->control('POST', 'ui/contacts', { properties => { email => "crash$n\@journal.test", firstname => "C$n" } })->{id};
}
ok(wait_fired(), 'a download hangs mid-read');
my $pid = HubSync::Node::worker_pids($node)->{'hubsync pull'};
ok($pid, 'the pull worker runs');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM hubspot.contacts WHERE email LIKE 'crash%\@journal.test'"),
	'after the crash the entries are read again and applied');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id IN (" . join(',', @ids) . ") GROUP BY object_id, property_name, occurred_at HAVING count(*) > 1"),
	'', 'no event stored twice');
my $made = journal()->{counters}{entries};
ok($node->poll_query_until('postgres', "SELECT entries = $entries_before + ($made - $made_before) FROM hubsync.journal_state"),
	'each journal entry was stored exactly once (the offset moved with the events)');

# wait_fired -- the hang fault was hit (the worker is inside the download)
sub wait_fired
{
	for (1 .. 100)
	{
		return 1 if $fake->control('GET', 'faults')->{fired} > $fired_before;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# ---- webhooks and the journal together: each change stored and applied once ----
my $port = PostgreSQL::Test::Cluster::get_free_port();
$node->append_conf('postgresql.conf', "hubsync.webhook_port = $port\n");
$node->restart;
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'the receiver runs beside the journal');
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");
$fake->control('POST', "ui/contacts/$id", { properties => { jobtitle => 'Both ways' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND jobtitle = 'Both ways'"),
	'the change is applied');
$fake->control('POST', 'webhooks/flush', { timeoutMs => 10000 });
my $wh = $fake->control('GET', 'webhooks/deliveries')->{deliveries};
ok(scalar(grep { $_->{status} && $_->{status} == 200 } @$wh) > 0, 'the webhook was delivered');
ok($node->poll_query_until('postgres',
	"SELECT (SELECT count(*) FROM hubsync.journal_state WHERE read_at > now() - interval '1 min') = 1 "
	  . "AND NOT EXISTS (SELECT 1 FROM hubsync.inbox WHERE state = 'pending')"),
	'the journal read the same change');
ok(journal()->{events} && scalar(grep { ($_->{propertyName} // '') eq 'jobtitle' && $_->{objectId} == $id } @{ journal()->{events} }) == 1,
	'the journal holds the change too');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $id AND property_name = 'jobtitle'"), 1,
	'the change is stored once in the inbox');
is(q1("SELECT count(*) FROM hubsync.changes WHERE direction = 'in' AND hs_object_id = $id AND properties ? 'jobtitle'"),
	1, 'and applied once');

# ---- an expired offset: alert, poller catch-up, restart from the latest ----
$fake->configure(webhookUrl => undef);
q1("ALTER SYSTEM SET hubsync.journal_interval = 0");
q1("SELECT pg_reload_conf()");
sleep 1;
my $offset = q1("SELECT current_offset FROM hubsync.journal_state");
my $lost = $fake->control('POST', 'ui/contacts', { properties => { email => 'lost@journal.test', firstname => 'Lost' } })->{id};
ok($fake->control('POST', 'journal/expire', {})->{expired} > 0, 'the journal forgot its entries (three days passed)');
q1("ALTER SYSTEM SET hubsync.journal_interval = '200ms'");
q1("SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.alerts WHERE alert = 'journal_expired' AND payload ->> 'offset' = '$offset'"),
	'a journal_expired alert names the lost offset');
is(q1("SELECT expired FROM hubsync.journal_state"), 1, 'journal_state counts it');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $lost AND firstname = 'Lost'"),
	'the change the journal lost is found by the poller\'s catch-up');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE object_id = $lost AND event ->> 'hubsyncSource' = 'journal'"),
	0, '(through polling, not the journal)');
my $after = $fake->control('POST', 'ui/contacts', { properties => { email => 'after@journal.test', firstname => 'After' } })->{id};
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $after"),
	'reading goes on from the latest entry');
ok(q1("SELECT count(*) > 0 FROM hubsync.inbox WHERE object_id = $after AND event ->> 'hubsyncSource' = 'journal'") eq 't',
	'(through the journal)');

# ---- api_version = legacy: no journal, and a clear reason ----
q1("ALTER SYSTEM SET hubsync.api_version = 'legacy'");
q1("SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE '%legacy%' FROM hubsync.journal_state"),
	'under api_version = legacy the journal says it needs a dated version');
ok($node->log_contains('the Webhooks Journal is not read: hubsync.api_version is legacy'),
	'and the server log says so');

# ---- SQL: the subscriptions can be changed and synced again ----
q1("UPDATE hubsync.journal_subscriptions SET state = 'failed' WHERE object_type = 'deals'");
is(q1("SELECT count(*) FROM hubsync.sync_journal_subscriptions() WHERE object_type = 'deals' AND state = 'pending'"), 2,
	'sync_journal_subscriptions() queues failed subscriptions again');
q1("CREATE ROLE journal_app LOGIN");
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE journal_app; SELECT * FROM hubsync.sync_journal_subscriptions()");
like($err, qr/permission denied/, 'an application role cannot resync the subscriptions');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE journal_app; SELECT count(*) > 0 FROM hubsync.journal_subscriptions");
is($out, 't', 'but may see them');

done_testing();
