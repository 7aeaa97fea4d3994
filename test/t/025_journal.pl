# The Webhooks Journal, hubsync's third inbound path (issue 24), against
# the fake HubSpot's journal: hubsync creates the journal subscriptions of
# the mirrored types; a rep's change arrives through the journal with the
# receiver off; the entry files are downloaded with no Authorization
# header; echoes of our pushes change nothing; a crash (kill -9 of the pull
# worker) mid-read neither loses nor repeats an event; webhooks and the
# journal together store and apply each change once; an expired offset
# raises an alert, makes the poller catch up and restarts from the latest
# entry; under api_version = legacy the journal is not read and says why.
# Authentication (HubSpot's docs: the journal takes a client-credentials
# token with the developer.webhooks_journal scopes): the set-up is only the
# app's OAuth client id and secret; the journal's token is asked for with
# those scopes and refreshed before it expires; with an access token set
# too, CRM calls keep it and the journal its own token; a static token
# alone is refused with an alert and a hint (the fake refuses it too);
# check() has a journal row; polling is five times slower with the journal.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_fake('journal', no_credentials => 1,
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
# set_credentials without the statement reaching the log
sub setcred { $node->safe_psql('postgres', "SET log_statement = 'none'; SELECT hubsync.set_credentials($_[0])"); }
sub last_seq { return $fake->control('GET', 'requests')->{lastSeq}; }
sub since
{
	my ($seq, $re) = @_;
	return grep { ($_->{rawPath} // $_->{path}) =~ $re } @{ $fake->control('GET', "requests?since=$seq")->{requests} };
}

# the realistic set-up: only the app's client id and secret (no access
# token, no refresh token), and the client secret that signs webhooks
my $seq0 = last_seq();
setcred("oauth_client_id => 'hubsync-client-id', oauth_client_secret => 'hubsync-oauth-secret', "
	. "client_secret => 'hubsync-test-secret'");

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
my @jr = since($seq0, qr{^/webhooks-journal/});
ok(@jr > 0 && !grep({ ($_->{auth} // '') ne 'client_credentials' } @jr),
	'every journal request carried a client-credentials token');
is(scalar(grep { $_->{status} == 401 || $_->{status} == 403 } @jr), 0,
	'none was refused: the token was asked for with the journal scopes');

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

# ---- the journal's token is refreshed before it expires ----
$fake->configure(oauthExpiresIn => 4);
$fake->control('POST', 'oauth/expire', {});
my $seq1 = last_seq();
$fake->control('POST', "ui/contacts/$id", { properties => { firstname => 'Jo' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND firstname = 'Jo'"),
	'a change arrives after every token expired');
sleep 1;
my $seq2 = last_seq();
sleep 7;
$fake->control('POST', "ui/contacts/$id", { properties => { firstname => 'Joe' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $id AND firstname = 'Joe'"),
	'and one after the 4-second tokens ran out');
is(scalar(grep { $_->{status} == 401 } since($seq2, qr{^/webhooks-journal/})), 0,
	'no journal request was sent with an expired token');
ok(scalar(since($seq1, qr{^/oauth/})) >= 3, 'new tokens were asked for before use');
$fake->configure(oauthExpiresIn => 1800);

# ---- polling is only the safety net: five times slower with the journal ----
q1("ALTER SYSTEM SET hubsync.poll_interval = '1s'");
q1("SELECT pg_reload_conf()");
sleep 2;
my $seq3 = last_seq();
sleep 10;
my $polls = scalar(since($seq3, qr{/objects/(2026-09/)?contacts/search}));
ok($polls <= 3, "polling every 5 s, not every second, with the journal on ($polls contacts searches in 10 s)");
q1("ALTER SYSTEM SET hubsync.poll_interval = '1h'");
q1("SELECT pg_reload_conf()");

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

# ---- an access token too: CRM calls keep it, the journal its own token ----
setcred("access_token => 'test-token'");
sleep 1;
my $seq4 = last_seq();
q1("UPDATE hubspot.contacts SET lastname = 'Static' WHERE hs_object_id = $after");
ok(HubSync::Node::wait_outbox_empty($node), 'a local change is pushed');
$fake->control('POST', "ui/contacts/$after", { properties => { city => 'Journalville' } });
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $after AND city = 'Journalville'"),
	'a rep\'s change arrives through the journal');
my @crm = since($seq4, qr{^/crm/});
ok(@crm > 0 && !grep({ ($_->{auth} // '') ne 'private' } @crm), 'CRM calls carried the access token');
@jr = since($seq4, qr{^/webhooks-journal/});
ok(@jr > 0 && !grep({ ($_->{auth} // '') ne 'client_credentials' } @jr),
	'journal requests carried the client-credentials token');
my ($cok, $cdetail) = split /\|/, q1("SELECT ok, detail FROM hubsync.check() WHERE item = 'journal'");
is($cok, 't', "check(): the journal row is ok ($cdetail)");

# the fake refuses what HubSpot refuses: a static token (401), a
# client-credentials token asked for without the journal scopes (403)
my ($st) = $fake->request('GET', '/webhooks-journal/journal-local/2026-03/latest', undef,
	{ Authorization => 'Bearer test-token' });
is($st, 401, 'the fake refuses a static token on the journal');
my ($ts, $tok) = $fake->request('POST', '/oauth/2026-03/token',
	'grant_type=client_credentials&client_id=hubsync-client-id&client_secret=hubsync-oauth-secret',
	{ 'Content-Type' => 'application/x-www-form-urlencoded' });
is($ts, 200, 'a client-credentials token without scopes');
my ($ss, $sbody) = $fake->request('GET', '/webhooks-journal/journal-local/2026-03/latest', undef,
	{ Authorization => "Bearer $tok->{access_token}" });
is($ss . ' ' . ($sbody->{category} // ''), '403 MISSING_SCOPES', 'is refused for a missing scope');

# check() says so when the app lacks the journal scopes
$fake->configure(oauthScopes => ['oauth', 'crm.objects.contacts.read']);
($cok, $cdetail) = split /\|/, q1("SELECT ok, detail FROM hubsync.check() WHERE item = 'journal'");
is($cok, 'f', 'check(): not ok when the app lacks the journal scopes');
like($cdetail, qr/invalid_scope/, "check() gives HubSpot's reason ($cdetail)");
$fake->configure(oauthScopes => ['oauth', 'crm.objects.contacts.read', 'crm.objects.contacts.write',
	'crm.objects.companies.read', 'crm.objects.companies.write', 'crm.objects.deals.read',
	'crm.objects.deals.write', 'crm.schemas.custom.read', 'developer.webhooks_journal.read',
	'developer.webhooks_journal.subscriptions.read', 'developer.webhooks_journal.subscriptions.write']);

# ---- a static token alone: the journal says it needs the client id and secret ----
q1("DELETE FROM hubsync.alerts WHERE alert = 'journal_auth'");
setcred("oauth_client_id => '', oauth_client_secret => ''");
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE '%client id and secret%' FROM hubsync.journal_state"),
	'with only a static token the journal records why it cannot read');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM hubsync.alerts WHERE alert = 'journal_auth' "
	  . "AND payload ->> 'hint' LIKE '%oauth_client_id%developer.webhooks_journal.read%'"),
	'a journal_auth alert with the hint');
ok($node->log_contains('hubsync cannot read the Webhooks Journal: no OAuth client id and secret'),
	'a WARNING in the server log');
my ($ok2, $hint2) = split /\|/, q1("SELECT ok, hint FROM hubsync.check() WHERE item = 'journal'");
is($ok2, 'f', 'check(): the journal row is not ok');
like($hint2, qr/oauth_client_id/, 'check() hints at the client id and secret');
setcred("oauth_client_id => 'hubsync-client-id', oauth_client_secret => 'hubsync-oauth-secret'");
my $back = $fake->control('POST', 'ui/contacts', { properties => { email => 'back@journal.test' } })->{id};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = $back"),
	'with the client id and secret set again the journal reads on');
unlike(slurp_file($node->logfile), qr/hubsync-oauth-secret|CJT[0-9a-f]{8}/, 'no secret in the server log');

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
