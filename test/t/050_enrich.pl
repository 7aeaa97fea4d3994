# Lead enrichment: rules and providers are validated and owner-only; the
# real-time lane enriches a form submission and the values reach HubSpot
# within a second or so; the batch lane sends one call per batch; data
# quality (fill empty, score rules, HubSpot-owned fields); daily budget;
# a provider that times out, answers 429 or 500, malformed JSON or wrong
# types ends with a clear status and an undamaged record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeEnrichment;

my $prov = HubSync::FakeEnrichment->start;
my $wh_port = PostgreSQL::Test::Cluster::get_free_port();
my ($node, $fake) = HubSync::Node::with_fake('enrich',
	conf => {
		'hubsync.enrichment_batch_interval' => '2s',
		'hubsync.enrichment_max_attempts' => 2,
		'hubsync.webhook_port' => $wh_port,
	});

my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $url = $prov->url;

# properties the fake HubSpot lacks out of the box
for my $p ('form', 'hs_linkedin_url')
{
	my ($st) = $fake->request('POST', '/crm/v3/properties/contacts',
		{ name => $p, label => $p, type => 'string', fieldType => 'text', groupName => 'contactinformation' },
		{ Authorization => 'Bearer test-token' });
	ok($st == 201 || $st == 200, "property $p created in the fake HubSpot");
}

# ---- providers and rules: validation, owner only ----
my $mapping = '{"jobtitle": "$.person.title", "hs_linkedin_url": "$.person.linkedin", '
  . '"mobilephone": "$.person.phone", "company": "$.person.employer.name", "website": "$.person.employer.domain"}';
$sql->("INSERT INTO hubsync.enrichment_providers
	(name, endpoint, mapping, score_path, min_score, daily_budget, accepts_batch, batch_size, timeout_ms)
	VALUES ('fakeco', '$url', '$mapping', '\$.confidence', 0.8, 1000, true, 50, 1000)");
$sql->("SELECT hubsync.set_enrichment_key('fakeco', 'sk-enrich-secret-42')");

my ($ret, $out, $err) = $node->psql('postgres', "INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping)
	VALUES ('badpath', '$url', '{\"jobtitle\": \"person..title((\"}')");
like($err, qr/mapping of property "jobtitle" is not a valid JSON path/, 'a bad JSON path is refused');

($ret, $out, $err) = $node->psql('postgres', "INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping)
	VALUES ('ftp', 'ftp://files.example/enrich', '{}')");
like($err, qr/violates check constraint "enrichment_providers_endpoint_check"/, 'a non-HTTP endpoint is refused');
($ret, $out, $err) = $node->psql('postgres', "SELECT hubsync.set_enrichment_key('nosuch', 'k')");
like($err, qr/enrichment provider "nosuch" does not exist/, 'a key for an unknown provider is refused');
is($sql->("SELECT string_agg(name, ',') FROM hubsync.enrichment_providers"), 'fakeco', 'only the valid provider was stored');

my $rule = sub {
	my ($name, $cond, $lane, $provider, $fields) = @_;
	$cond =~ s/'/''/g;
	$provider //= 'fakeco';
	return $node->psql('postgres', "INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider, fields)
		VALUES ('$name', 'contacts', '$cond', '$lane', '$provider', " . ($fields ? "'$fields'" : 'NULL') . ")");
};
($ret, $out, $err) = $rule->('evil', "true; DROP TABLE hubspot.deals", 'realtime');
like($err, qr/invalid enrichment rule condition: it contains a semicolon/, 'a second statement is refused');
($ret, $out, $err) = $rule->('evil', "true) FROM pg_authid WHERE (true", 'realtime');
like($err, qr/invalid enrichment rule condition/, 'a smuggled FROM is refused');
($ret, $out, $err) = $rule->('evil', "email IN (SELECT rolname FROM pg_roles)", 'realtime');
like($err, qr/subqueries are not allowed/, 'a subquery is refused');
($ret, $out, $err) = $rule->('evil', "no_such_column = 1", 'realtime');
like($err, qr/invalid enrichment rule condition: column "no_such_column" does not exist/, 'an unknown column is refused');
($ret, $out, $err) = $rule->('evil', "true", 'realtime', 'fakeco', '{fax}');
like($err, qr/does not map property "fax"/, 'a field the provider does not map is refused');
$sql->("CREATE ROLE app LOGIN; GRANT USAGE ON SCHEMA hubspot TO app; GRANT ALL ON hubspot.contacts TO app");
($ret, $out, $err) = $node->psql('postgres', "SET ROLE app; INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider)
	VALUES ('mine', 'contacts', 'true', 'realtime', 'fakeco')");
like($err, qr/permission denied/, 'only the extension owner may create rules');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE app; SELECT hubsync.set_enrichment_key('fakeco', 'x')");
like($err, qr/permission denied/, 'only the extension owner may set keys');
is($sql->("SELECT count(*) FROM hubsync.enrichment_rules"), '0', 'no refused rule was stored');
is($sql->("SELECT count(*) FROM pg_trigger WHERE tgname = 'hubsync_enrich'"), '0', 'no rule, no trigger on mirror tables');

($ret, $out, $err) = $rule->('demo', "properties->>'form' = 'demo request'", 'realtime');
is($ret, 0, 'real-time rule created') or diag $err;
($ret, $out, $err) = $rule->('nurture', "lifecyclestage = 'lead'", 'batch');
is($ret, 0, 'batch rule created') or diag $err;
is($sql->("SELECT string_agg(tgrelid::regclass::text, ',') FROM pg_trigger WHERE tgname = 'hubsync_enrich'"),
	'hubspot.contacts', 'only the table with rules got the enrichment trigger');

# ---- real-time lane, end to end, with a provider taking 300 ms ----
$prov->configure(latency_ms => 300);
my $t0 = time;
my $ann = $sql->("INSERT INTO hubspot.contacts (email, firstname, properties)
	VALUES ('ann\@acme.example', 'Ann', '{\"form\": \"demo request\"}') RETURNING hubsync_id");
my $hs;
my $rec;
while (time - $t0 < 60)
{
	$hs = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$ann'");
	if ($hs ne '')
	{
		$rec = $fake->control('GET', "records/contacts/$hs");
		last if ($rec->{properties}{jobtitle} // '') ne '';
	}
	sleep 0.02;
}
my $elapsed = time - $t0;
diag(sprintf('real-time lane: commit to enriched values in HubSpot in %.0f ms (provider latency 300 ms)', $elapsed * 1000));
is($rec->{properties}{jobtitle}, 'Head of Ann', 'job title in HubSpot');
is($rec->{properties}{mobilephone}, $sql->("SELECT mobilephone FROM hubspot.contacts WHERE hubsync_id = '$ann'"),
	'mobile phone in HubSpot');
is($rec->{properties}{hs_linkedin_url}, 'https://www.linkedin.com/in/ann', 'LinkedIn URL (a jsonb property) in HubSpot');
is($rec->{properties}{company}, 'Acme', 'company in HubSpot');
is($rec->{properties}{website}, 'acme.example', 'company domain in HubSpot');
cmp_ok($elapsed, '<', 5, 'enriched values reached HubSpot within seconds of commit (target < 1 s unloaded)');
is($sql->("SELECT provider || ' ' || score || ' ' || origin || ' ' || op FROM hubsync.changes
	WHERE hubsync_id = '$ann' AND op = 'enrich'"), 'fakeco 0.9 enrichment enrich',
	'the change feed records provider and score');
ok(HubSync::Node::wait_outbox_empty($node), 'outbox drained');
is($sql->("SELECT count(*) FROM hubsync.changes WHERE hubsync_id = '$ann' AND direction = 'out' AND origin = 'enrichment'"),
	'1', 'the enriched values went out through the outbox with origin enrichment');
is($prov->control('GET', 'stats')->{auth}[0], 'Bearer sk-enrich-secret-42', 'the API key was sent to the provider');
is($sql->("SELECT state FROM hubsync.enrichment_jobs WHERE hubsync_id = '$ann'"), 'done', 'job done');

# a form submitted in HubSpot: arrives by webhook, is enriched, goes back.
# Webhooks are on for this part only: the creation events of records
# hubsync itself created would race with their enrichment (see the report:
# applying such an event can overwrite a fresh local change).
$fake->configure(webhookUrl => "http://127.0.0.1:$wh_port/hubspot/webhooks",
	webhookPropertyChangeOnCreate => JSON::PP::true);
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook receiver runs');
$t0 = time;
my $web = $fake->control('POST', 'ui/contacts', { properties => {
	email => 'web@forms.example', firstname => 'Web', form => 'demo request' } });
my $web_title = '';
while (time - $t0 < 60)
{
	$web_title = $fake->control('GET', "records/contacts/$web->{id}")->{properties}{jobtitle} // '';
	last if $web_title ne '';
	sleep 0.05;
}
diag(sprintf('form submitted in HubSpot to enriched values back in HubSpot: %.0f ms', (time - $t0) * 1000));
is($web_title, 'Head of Web', 'a form submitted in HubSpot is enriched and the values reach HubSpot');
is($sql->("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = $web->{id}"), '1',
	'one mirror row for it, no duplicate');
$fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
$fake->configure(webhookUrl => undef);
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'"),
	'webhooks applied; webhooks off again');

# the same trigger never enriches the record twice
my $calls = $prov->control('GET', 'stats')->{requests};
$sql->("UPDATE hubspot.contacts SET firstname = 'Annie' WHERE hubsync_id = '$ann'");
$sql->("UPDATE hubspot.contacts SET properties = properties || '{\"form\": \"demo request\"}' WHERE hubsync_id = '$ann'");
sleep 1.5;
is($prov->control('GET', 'stats')->{requests}, $calls, 'updates of a matching record call the provider no more');
is($sql->("SELECT count(*) FROM hubsync.enrichment_jobs WHERE hubsync_id = '$ann'"), '1', 'one job per record and rule');
$prov->configure(latency_ms => 0);

# ---- batch lane: one call for the collected records ----
my $before = $prov->control('GET', 'stats');
$sql->("INSERT INTO hubspot.contacts (email, lifecyclestage)
	SELECT 'lead' || i || '\@nurture.example', 'lead' FROM generate_series(1, 3) i");
is($sql->("SELECT count(*) FROM hubsync.enrichment_jobs WHERE lane = 'batch' AND state = 'pending'"), '3',
	'batch jobs wait for the batch lane');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM hubsync.enrichment_jobs WHERE lane = 'batch' AND state = 'done'"),
	'batch lane enriched the three leads');
my $after = $prov->control('GET', 'stats');
is($after->{batch_requests} - $before->{batch_requests}, 1, 'in one batch call');
is($after->{records} - $before->{records}, 3, 'carrying the three records');
is($sql->("SELECT hubsync.enrich_existing('nurture')"), '0', 'enrich_existing queues nothing already enriched for that rule');
is($sql->("SELECT count(*) FROM hubspot.contacts WHERE email LIKE '%\@nurture.example' AND jobtitle LIKE 'Head of Lead%'"),
	'3', 'batch results written to the mirror');

# ---- data quality ----
# wait_job -- wait until a record's job of a rule has finished
my $wait_job = sub {
	my ($id, $rule_name) = @_;
	$rule_name //= 'demo';
	return $node->poll_query_until('postgres',
		"SELECT state IN ('done', 'failed') FROM hubsync.enrichment_jobs j JOIN hubsync.enrichment_rules r ON r.id = j.rule_id
		 WHERE j.hubsync_id = '$id' AND r.name = '$rule_name'");
};
my $demo = sub {
	my ($email, $extra_cols, $extra_vals) = @_;
	$extra_cols //= '';
	$extra_vals //= '';
	return $sql->("INSERT INTO hubspot.contacts (email, firstname, properties$extra_cols)
		VALUES ('$email', 'Kept', '{\"form\": \"demo request\"}'$extra_vals) RETURNING hubsync_id");
};

# low score: empty fields filled, a non-empty one kept
$prov->configure(scores => { 'low@q.example' => 0.5, 'high@q.example' => 0.95 });
my $low = $demo->('low@q.example', ', jobtitle', ", 'CEO'");
ok($wait_job->($low), 'low-score job finished');
is($sql->("SELECT jobtitle || '|' || (mobilephone IS NOT NULL) FROM hubspot.contacts WHERE hubsync_id = '$low'"),
	'CEO|true', 'score below the minimum: the title is kept, the empty phone filled');
like($sql->("SELECT skipped->>'jobtitle' FROM hubsync.enrichment_jobs WHERE hubsync_id = '$low'"),
	qr/score 0.5 is below the minimum 0.8/, 'the reason is recorded');

# high score overwrites a non-empty field
my $high = $demo->('high@q.example', ', jobtitle', ", 'CEO'");
ok($wait_job->($high), 'high-score job finished');
is($sql->("SELECT jobtitle FROM hubspot.contacts WHERE hubsync_id = '$high'"), 'Head of High',
	'score above the minimum overwrites');

# never replaced by a lower score: a second rule, a lower-scored answer
($ret, $out, $err) = $rule->('vip', "hs_lead_status = 'OPEN'", 'realtime', 'fakeco', '{jobtitle}');
is($ret, 0, 'second rule created') or diag $err;
$prov->configure(scores => { 'high@q.example' => 0.85 },
	people => { 'high@q.example' => { title => 'Intern' } });
$sql->("UPDATE hubspot.contacts SET hs_lead_status = 'OPEN' WHERE hubsync_id = '$high'");
ok($wait_job->($high, 'vip'), 'second job finished');
is($sql->("SELECT jobtitle FROM hubspot.contacts WHERE hubsync_id = '$high'"), 'Head of High',
	'a value is never replaced by a lower-scored one');
like($sql->("SELECT j.skipped->>'jobtitle' FROM hubsync.enrichment_jobs j JOIN hubsync.enrichment_rules r ON r.id = j.rule_id
	WHERE j.hubsync_id = '$high' AND r.name = 'vip'"), qr/score 0.95/, 'with the reason');
$prov->configure(people => {}, scores => {});

# a property owned by HubSpot is never written
$sql->("SELECT hubsync.set_owner('contacts', 'company', 'hubspot')");
my $owned = $demo->('owned@q.example');
ok($wait_job->($owned), 'job finished');
is($sql->("SELECT coalesce(company, 'NULL') || '|' || jobtitle FROM hubspot.contacts WHERE hubsync_id = '$owned'"),
	'NULL|Head of Owned', 'a HubSpot-owned field stays untouched, the others are filled');
is($sql->("SELECT skipped->>'company' FROM hubsync.enrichment_jobs WHERE hubsync_id = '$owned'"),
	'owned by hubspot', 'with the reason');
$sql->("SELECT hubsync.set_owner('contacts', 'company', 'latest')");

# a condition that fails on some row warns; the application's write goes on
($ret, $out, $err) = $rule->('scored', "(properties->>'lead_score')::int > 50", 'batch', 'fakeco', '{jobtitle}');
is($ret, 0, 'lead-score rule created') or diag $err;
($ret, $out, $err) = $node->psql('postgres', "INSERT INTO hubspot.contacts (email, properties)
	VALUES ('odd\@q.example', '{\"lead_score\": \"many\"}'), ('hot\@q.example', '{\"lead_score\": \"80\"}')");
is($ret, 0, 'a row the condition cannot evaluate is still written');
like($err, qr/WARNING:  enrichment rule \d+ could not be evaluated: invalid input syntax for type integer/,
	'with a warning naming the rule');
is($sql->("SELECT string_agg(c.email, ',') FROM hubsync.enrichment_jobs j JOIN hubsync.enrichment_rules r ON r.id = j.rule_id
	JOIN hubspot.contacts c ON c.hubsync_id = j.hubsync_id WHERE r.name = 'scored'"), 'hot@q.example',
	'only the matching record was queued');
$sql->("DELETE FROM hubsync.enrichment_rules WHERE name = 'scored'");

# ---- failures: each ends with a clear status and an undamaged record ----
my $unblock = sub {
	$sql->("UPDATE hubsync.enrichment_usage SET failures = 0, blocked_until = NULL");
};
my $intact = sub {
	my ($id) = @_;
	return $sql->("SELECT coalesce(jobtitle, 'NULL') || '|' || coalesce(mobilephone, 'NULL') || '|' || firstname
		|| '|' || (properties->>'form') FROM hubspot.contacts WHERE hubsync_id = '$id'");
};
my $job_status = sub {
	my ($id) = @_;
	return $sql->("SELECT state || ': ' || last_error FROM hubsync.enrichment_jobs WHERE hubsync_id = '$id'");
};

# 429 with Retry-After: backs off, then succeeds
$prov->configure(fault => '429', fault_count => 1, retry_after => 1);
my $seq = scalar @{ $prov->control('GET', 'stats')->{log} };
my $r429 = $demo->('ratelimited@q.example');
ok($wait_job->($r429), '429 job finished');
is($sql->("SELECT state || ' after ' || attempts FROM hubsync.enrichment_jobs WHERE hubsync_id = '$r429'"),
	'done after 2', '429: retried and enriched');
my @log = @{ $prov->control('GET', 'stats')->{log} }[ $seq .. $seq + 1 ];
cmp_ok($log[1]{at} - $log[0]{at}, '>=', 0.9, 'the retry waited for Retry-After');
$prov->configure(fault => undef, retry_after => undef);

# timeout: the provider hangs; pushes go on meanwhile
$unblock->();
$prov->configure(fault => 'timeout', fault_count => -1);
my $slow = $demo->('slow@q.example');
my $other = $sql->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('bystander\@q.example', 'By') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', "SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$other'"),
	'pushes go on while the provider hangs');
ok($wait_job->($slow), 'timed-out job finished');
like($job_status->($slow), qr/^failed: provider fakeco timed out after 1000 ms; gave up after 2 attempts$/, 'timeout: clear status');
is($intact->($slow), 'NULL|NULL|Kept|demo request', 'timeout: record undamaged');

# 500 on every attempt
$unblock->();
$prov->configure(fault => '500', fault_count => -1);
my $e500 = $demo->('broken@q.example');
ok($wait_job->($e500), '500 job finished');
like($job_status->($e500), qr/^failed: provider fakeco failed \(HTTP 500\); gave up after 2 attempts$/, '500: clear status');
is($intact->($e500), 'NULL|NULL|Kept|demo request', '500: record undamaged');
like($sql->("SELECT state || ' ' || last_status FROM hubsync.enrichment_status WHERE provider = 'fakeco'"),
	qr/^backing off 500$/, 'enrichment_status shows the back-off');

# malformed JSON
$unblock->();
$prov->configure(fault => 'malformed', fault_count => -1);
my $bad = $demo->('garbled@q.example');
ok($wait_job->($bad), 'malformed job finished');
like($job_status->($bad), qr/^failed: provider fakeco returned malformed JSON \(\d+ bytes\); nothing was written$/,
	'malformed JSON: clear status');
is($intact->($bad), 'NULL|NULL|Kept|demo request', 'malformed JSON: record undamaged');

# wrong types
$prov->configure(fault => 'wrong_types', fault_count => -1);
my $wt = $demo->('typed@q.example');
ok($wait_job->($wt), 'wrong-types job finished');
like($job_status->($wt), qr/^failed: provider fakeco returned wrong types: jobtitle \(object\), mobilephone \(array\); nothing was written$/,
	'wrong types: clear status');
is($intact->($wt), 'NULL|NULL|Kept|demo request', 'wrong types: record undamaged');
$prov->configure(fault => undef);

# failed jobs can be sent again once the provider is fixed
is($sql->("SELECT hubsync.retry_enrichments('fakeco')"), '4', 'four failed jobs queued again');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM hubsync.enrichment_jobs WHERE hubsync_id IN ('$slow', '$e500', '$bad', '$wt') AND state = 'done'"),
	'retried jobs done');
is($sql->("SELECT jobtitle FROM hubspot.contacts WHERE hubsync_id = '$wt'"), 'Head of Typed', 'and the record enriched');

# ---- daily budget ----
$unblock->();
$sql->("UPDATE hubsync.enrichment_providers SET daily_budget =
	(SELECT calls FROM hubsync.enrichment_usage WHERE provider = 'fakeco') + 1 WHERE name = 'fakeco'");
my $b1 = $demo->('budget1@q.example');
ok($wait_job->($b1), 'last call within the budget made');
my $b2 = $demo->('budget2@q.example');
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE 'daily budget of provider fakeco exhausted%' FROM hubsync.enrichment_jobs WHERE hubsync_id = '$b2'"),
	'over budget: the job waits with a clear reason');
is($sql->("SELECT state || ' ' || budget_left FROM hubsync.enrichment_status WHERE provider = 'fakeco'"),
	'budget exhausted 0', 'enrichment_status shows the budget exhausted');
like($sql->("SELECT enrichment FROM hubsync.status WHERE object_type = 'contacts'"),
	qr/^fakeco: budget exhausted, \d+\/\d+ calls today$/, 'so does hubsync.status, on the object type its rules enrich');
is($sql->("SELECT state FROM hubsync.enrichment_jobs WHERE hubsync_id = '$b2'"), 'pending', 'the job is kept for tomorrow');
is($intact->($b2), 'NULL|NULL|Kept|demo request', 'over budget: record untouched');

# ---- a restored dump has rules but no triggers: the worker puts them back ----
$sql->("DROP TRIGGER hubsync_enrich ON hubspot.contacts");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_trigger WHERE tgname = 'hubsync_enrich' AND tgrelid = 'hubspot.contacts'::regclass"),
	'the enrich worker recreated the missing trigger');
$sql->("UPDATE hubsync.enrichment_rules SET enabled = false");
is($sql->("SELECT count(*) FROM pg_trigger WHERE tgname = 'hubsync_enrich'"), '0',
	'no enabled rule left: the trigger is gone');

# ---- the key never leaks ----
my $status = $sql->("SELECT row_to_json(s)::text FROM hubsync.enrichment_status s");
unlike($status, qr/sk-enrich-secret/, 'no key in enrichment_status');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE app; SELECT * FROM hubsync._enrichment_keys");
like($err, qr/permission denied/, 'keys are not readable by other roles');
# the test cluster logs every statement (and so the set_enrichment_key
# call); hubsync's own messages must not carry the key
my $log = slurp_file($node->logfile);
my @own = grep { !/statement:/ && !/^\s/ } split /\n/, $log;
is(scalar(grep { /sk-enrich-secret/ } @own), 0, 'no key in hubsync\'s log messages');
unlike($log, qr/hubsync enrich.*(was terminated|exited with exit code)/, 'the enrich worker never crashed');

$prov->stop;
$fake->stop;
$node->stop;
done_testing();
