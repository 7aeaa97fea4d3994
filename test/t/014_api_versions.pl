# HubSpot's API version families: with hubsync.api_version = '2026-03'
# and = 'legacy', each against a fake HubSpot serving ONLY that family (any
# other path answers 404), the core round trip works -- an OAuth refresh,
# a push (insert and update), an association push (labels read), a
# webhook applied, a poll, a backfill -- and every request the fake saw
# used that family's paths; a refused refresh is read in either error shape.  hubsync.check() reports the version in use,
# and says so when the chosen version answers 404 while legacy works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

# the paths of each family (HubSpot's published OpenAPI documents)
my %family_re = (
	'2026-03' => qr{^/(crm/(objects|associations|properties|owners|pipelines)|crm-object-schemas|oauth)/2026-03(/|$)},
	'legacy'  => qr{^/(crm/v[34]/|crm/associations/v4/|crm-object-schemas/v3/|oauth/v1/)});

for my $v ('2026-03', 'legacy')
{
	my $fake = HubSync::FakeHubSpot->start;
	$fake->configure(apiFamilies => [$v], searchIndexLagMs => 0, searchPerSecond => 50,
		burstLimit => 1000, webhookPropertyChangeOnCreate => JSON::PP::true);
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	(my $name = "v$v") =~ s/-//g;
	my $node = HubSync::Node::new_node($name, create_extension => 1,
		conf => { 'hubsync.api_version' => $v, 'hubsync.api_base_url' => $fake->url,
			'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
			'hubsync.rate_limit' => 1000, 'hubsync.search_rate' => 50,
			'hubsync.poll_interval' => '2s', 'hubsync.poll_index_lag' => '0',
			'hubsync.poll_association_interval' => '3s' });
	my $q1 = sub { return $node->safe_psql('postgres', $_[0]); };
	my $wait = sub { return $node->poll_query_until('postgres', $_[0]); };

	# OAuth: the access token comes from this family's token endpoint
	$node->safe_psql('postgres', "SET log_statement = 'none'; SELECT hubsync.set_credentials(
		client_secret => 'hubsync-test-secret', oauth_client_id => 'hubsync-client-id',
		oauth_client_secret => 'hubsync-oauth-secret', oauth_refresh_token => 'hubsync-refresh-token')");
	$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks");

	# push: insert, then update
	my $hid = $q1->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('v\@$name.test', 'One') RETURNING hubsync_id");
	ok($wait->("SELECT hs_object_id IS NOT NULL FROM hubspot.contacts WHERE hubsync_id = '$hid'"),
		"$v: insert pushed (after an OAuth refresh)");
	my $cid = $q1->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$hid'");
	$q1->("UPDATE hubspot.contacts SET firstname = 'Two' WHERE hubsync_id = '$hid'");
	ok(HubSync::Node::wait_outbox_empty($node), "$v: update left");
	is($fake->control('GET', "records/contacts/$cid")->{properties}{firstname}, 'Two',
		"$v: update reached HubSpot");

	# association push (reads the labels of the pair first)
	my $co_h = $q1->("INSERT INTO hubspot.companies (name) VALUES ('Acme $name') RETURNING hubsync_id");
	$q1->("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
		VALUES ('contacts', '$hid', 'companies', '$co_h')");
	ok($wait->("SELECT (SELECT count(*) FROM hubsync.outbox) = 0 AND
		(SELECT count(*) FROM hubsync.association_outbox) = 0"), "$v: association left");
	my $co = $q1->("SELECT hs_object_id FROM hubspot.companies WHERE hubsync_id = '$co_h'");
	ok((grep { $_->{id} eq $co } @{ $fake->control('GET', "records/contacts/$cid")->{associations}{companies} || [] }),
		"$v: association created in HubSpot");

	# webhook applied: a rep creates a deal
	my $deal = $fake->control('POST', 'ui/deals', { properties => { dealname => "Deal $name",
		dealstage => 'appointmentscheduled', pipeline => 'default' } })->{id};
	ok($wait->("SELECT count(*) = 1 FROM hubspot.deals WHERE hs_object_id = $deal AND dealname = 'Deal $name'"),
		"$v: webhook applied (the record read back)");

	# poll: records created behind hubsync's back (no webhook)
	ok($wait->("SELECT count(*) FILTER (WHERE cursor_ms IS NOT NULL) = 3 FROM hubsync.poll_state
		WHERE object_type IN ('contacts', 'companies', 'deals')"), "$v: the poller set its cursors");
	$fake->control('POST', 'seed', { objectType => 'contacts', count => 5,
		properties => { email => 'p{n}@' . $name . '.test' } });
	ok($wait->("SELECT count(*) = 5 FROM hubspot.contacts WHERE email LIKE 'p%\@$name.test'"),
		"$v: poll found them");

	# backfill: companies HubSpot had before (older than the poll cursor)
	$fake->control('POST', 'seed', { objectType => 'companies', count => 7,
		sameTimestamp => '2020-01-01T00:00:00Z', properties => { name => "Old {n} $name" } });
	is($q1->("SELECT string_agg(b, ',') FROM hubsync.backfill('companies') b"), 'companies',
		"$v: backfill started");
	ok($wait->("SELECT state = 'done' FROM hubsync.backfills WHERE object_type = 'companies'"),
		"$v: backfill done");
	is($q1->("SELECT count(*) FROM hubspot.companies WHERE name LIKE 'Old % $name'"), '7',
		"$v: backfill imported them");

	# a second refresh: HubSpot expires the token early
	$fake->control('POST', 'oauth/expire', {});
	$q1->("UPDATE hubspot.contacts SET firstname = 'Three' WHERE hubsync_id = '$hid'");
	ok(HubSync::Node::wait_outbox_empty($node), "$v: pushed after a refresh");
	is($q1->("SELECT auth FROM hubsync.credentials_status"), 'ok', "$v: auth ok");

	is($q1->("SELECT ok::text || ' ' || detail FROM hubsync.check() WHERE item = 'api version'"),
		"true hubsync.api_version = $v", "$v: check() reports the version in use");

	# every request used this family's paths, none answered 404
	my @log = grep { defined $_->{apiVersion} } @{ $fake->control('GET', 'requests')->{requests} };
	my @tokens = grep { $_->{path} eq '/oauth/v1/token' } @log;
	ok(@tokens >= 2, "$v: OAuth token endpoint used (" . scalar(@tokens) . " times)");
	my %kinds;
	for my $e (@log)
	{
		$kinds{$1}++ if $e->{path} =~ m{^/crm/v\d/(objects/\w+/(batch/\w+|search)|associations/\w+/\w+/(batch/\w+|labels))};
	}
	ok($kinds{'objects/contacts/batch/upsert'} || $kinds{'objects/contacts/batch/create'}, "$v: batch writes seen");
	# labels: the Associations Schema document's path (legacy: its v4 one)
	my $labels = '/crm/associations/' . ($v eq 'legacy' ? 'v4' : $v) . '/contacts/companies/labels';
	ok((grep { $_->{rawPath} eq $labels && $_->{status} == 200 } @log), "$v: labels read at $labels");
	ok($kinds{'objects/companies/search'}, "$v: search seen");
	my @wrong = grep { $_->{apiVersion} ne $v || $_->{rawPath} !~ $family_re{$v} } @log;
	is(join(', ', map { "$_->{method} $_->{rawPath}" } @wrong), '', "$v: every request on the $v paths");
	my @nf = grep { $_->{status} == 404 && $_->{path} !~ m{/properties/\w+/hubsync_id$} } @log;
	is(join(', ', map { "$_->{method} $_->{rawPath}" } @nf), '', "$v: no 404");

	if ($v eq 'legacy')
	{
		# a HubSpot that serves only legacy, hubsync on 2026-09: check() says so
		$q1->("ALTER SYSTEM SET hubsync.api_version = '2026-09'");
		$q1->("SELECT pg_reload_conf()");
		my $row = $q1->("SELECT ok::text || '|' || detail || '|' || hint FROM hubsync.check() WHERE item = 'api version'");
		like($row, qr/^false\|hubsync\.api_version = 2026-09: HubSpot answered 404 on the 2026-09 paths, the legacy paths work\|.*api_version = 'legacy'.*pg_reload_conf/,
			'check(): the chosen version answers 404, legacy works: a hint to switch');
		$q1->("ALTER SYSTEM RESET hubsync.api_version");
		$q1->("SELECT pg_reload_conf()");
		sleep 1;
	}

	# a refused refresh, in this family's error shape: HubSpot's status word
	# on the numbered endpoint, RFC 6749 fields only on the dated one
	$fake->control('POST', 'oauth/revoke', {});
	$fake->control('POST', 'oauth/expire', {});
	$q1->("UPDATE hubspot.contacts SET firstname = 'Four' WHERE hubsync_id = '$hid'");
	ok($wait->("SELECT auth = 'refresh_failed' FROM hubsync.credentials_status"), "$v: refused refresh: refresh_failed");
	is($q1->("SELECT oauth_refresh_error FROM hubsync.credentials_status"),
		'HTTP 400 ' . ($v eq 'legacy' ? 'BAD_REFRESH_TOKEN ' : '') . 'invalid_grant: missing or unknown refresh token',
		"$v: refused refresh: the error read from this family's answer");
	$node->stop;
	$fake->stop;
}

done_testing();
