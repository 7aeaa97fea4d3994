# HubSpot's answers per API version: under 2026-09 batch answers carry
# per-record errors in a 200/201 body (no 207) and association archives
# answer 200 with a body; under legacy errors come as 207.  Either way:
# an admin validation rule dead-letters only the record it refuses, with
# HubSpot's message; upserts are matched on objectWriteTraceId even when
# HubSpot does not echo the idProperty; an association create is done only
# when HubSpot's results list it (the documented invalid-association
# error names no input); archiving the unlabeled type takes the pair's
# labeled types out of hubspot.associations; a JSON null property value is
# SQL NULL in a typed column and no key in the properties jsonb.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use JSON::PP;

my ($node, $fake) = HubSync::Node::with_fake('answers', conf => {
	'hubsync.max_attempts' => 3,
	'hubsync.retry_window' => '0',
});
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# set_version -- switch hubsync.api_version and give the workers time to reload
sub set_version
{
	q1("ALTER SYSTEM SET hubsync.api_version = '$_[0]'");
	q1('SELECT pg_reload_conf()');
	sleep 2;
}

# drained -- records and associations have left (or failed)
sub drained
{
	return $node->poll_query_until('postgres',
		"SELECT (SELECT count(*) FROM hubsync.outbox) = 0
		    AND (SELECT count(*) FROM hubsync.association_outbox WHERE state <> 'failed') = 0");
}

# in_hubspot -- the fake's record of a mirror row (undef when not there)
sub in_hubspot
{
	my ($type, $hid) = @_;
	my $hs = q1("SELECT hs_object_id FROM hubspot.$type WHERE hubsync_id = '$hid'");
	return undef unless $hs;
	my $rec = eval { $fake->control('GET', "records/$type/$hs") };
	return $rec && !$rec->{archived} ? $rec : undef;
}

# ---- a JSON null property value ------------------------------------------
is(q1(q{SELECT (cols ? 'amount') AND cols -> 'amount' = 'null'::jsonb FROM hubsync._wire_to_row('deals',
	'{"amount": null, "dealname": "n", "nosuch": null, "other": "y"}')}), 't',
	'JSON null of a typed property: SQL NULL in its column');
is(q1(q{SELECT extra::text || ' ' || ('nosuch' = ANY (clear))::text FROM hubsync._wire_to_row('deals',
	'{"amount": null, "dealname": "n", "nosuch": null, "other": "y"}')}), '{"other": "y"} true',
	'JSON null of an unmapped property: the key leaves the properties jsonb');
q1("INSERT INTO hubspot.deals (dealname, amount) VALUES ('warm-up', 5)");
ok(drained(), 'warm-up deal pushed');

# ---- admin validation rules: one record refused, the others sync --------
$fake->configure(validationRules => [ { objectType => 'deals', propertyName => 'amount',
	ruleType => 'MAX_NUMBER', ruleArguments => ['1000'], exceptWhenSet => ['dealtype'] } ]);
for my $case ([ '2026-09', 200 ], [ 'legacy', 207 ])
{
	my ($v, $status) = @$case;
	set_version($v);
	q1("SELECT hubsync.pause('deals')");
	my @good = map { q1("INSERT INTO hubspot.deals (dealname, amount) VALUES ('$v small $_', 10) RETURNING hubsync_id") } 1 .. 2;
	push @good, q1("INSERT INTO hubspot.deals (dealname, amount, dealtype) VALUES ('$v big typed', 5000, 'newbusiness')
		RETURNING hubsync_id");
	my $bad = q1("INSERT INTO hubspot.deals (dealname, amount) VALUES ('$v big', 5000) RETURNING hubsync_id");
	q1("SELECT hubsync.resume('deals')");
	ok(drained(), "$v: rule batch drained");
	is(q1("SELECT category || ' ' || status FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"),
		"VALIDATION_ERROR $status", "$v: the refused deal is dead-lettered ($status)");
	like(q1("SELECT message FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"),
		qr/"amount" failed validation rule MAX_NUMBER \(1000\); required: dealtype/,
		"$v: with HubSpot's message naming the rule and property");
	is(scalar(grep { in_hubspot('deals', $_) } @good), 3, "$v: the rest of the batch reached HubSpot");
	is(q1("SELECT count(*) FROM hubsync.dead_letters WHERE hubsync_id IN ('" . join("','", @good) . "')"), '0',
		"$v: only that record is dead-lettered");
}
$fake->configure(validationRules => []);
set_version('2026-09');

# ---- upserts matched on objectWriteTraceId, idProperty not echoed -------
$fake->configure(echoIdProperty => JSON::PP::false);
q1("SELECT hubsync.pause('contacts')");
my @cs = map { q1("INSERT INTO hubspot.contacts (email, firstname) VALUES ('trace$_\@example.com', 'T$_')
	RETURNING hubsync_id") } 1 .. 3;
q1("SELECT hubsync.resume('contacts')");
ok(drained(), 'no echo: contacts drained');
is(q1("SELECT count(*) FROM hubspot.contacts WHERE hubsync_id IN ('" . join("','", @cs) . "') AND hs_object_id IS NOT NULL"),
	'3', 'no echo: every contact learned its HubSpot id');
is(q1("SELECT count(*) FROM hubsync.dead_letters WHERE hubsync_id IN ('" . join("','", @cs) . "')"), '0',
	'no echo: no dead letter');
is($fake->control('GET', 'counters')->{duplicates}{hubsync_id}, 0, 'no echo: no duplicates');
my @ups = grep { $_->{endpoint} && $_->{endpoint} =~ m{contacts/batch/upsert} }
	@{ $fake->control('GET', 'requests')->{requests} };
is(scalar(@ups), 1, 'no echo: one upsert, nothing resent');
$fake->configure(echoIdProperty => JSON::PP::true);

# ---- association create: done only what HubSpot's results list ---------
for my $v ('2026-09', 'legacy')
{
	set_version($v);
	my $co = q1("INSERT INTO hubspot.companies (name) VALUES ('$v co') RETURNING hubsync_id");
	my @d = map { q1("INSERT INTO hubspot.deals (dealname, amount) VALUES ('$v d$_', 1) RETURNING hubsync_id") } 1 .. 3;
	ok(drained(), "$v: deals and company pushed");
	my $gone = q1("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$d[2]'");
	$fake->control('POST', "ui/deals/$gone/delete", {});    # no webhooks here: the mirror keeps it
	my $since = $fake->control('GET', 'requests')->{lastSeq};
	q1("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
		SELECT 'deals', d, 'companies', '$co' FROM unnest(ARRAY['" . join("','", @d) . "']::uuid[]) d");
	ok(drained(), "$v: associations settled");
	my @sent = grep { $_->{endpoint} && $_->{endpoint} =~ m{associations/.*/batch/create} }
		@{ $fake->control('GET', "requests?since=$since")->{requests} };
	is($sent[0]{status}, $v eq 'legacy' ? 207 : 200, "$v: HubSpot answered the batch with " . ($v eq 'legacy' ? 207 : 200));
	is(q1("SELECT count(*) FROM hubsync.association_outbox WHERE state = 'failed' AND from_hubsync_id IN ('$d[0]', '$d[1]')"),
		'0', "$v: the valid associations are done");
	my $cid = q1("SELECT hs_object_id FROM hubspot.companies WHERE hubsync_id = '$co'");
	is(scalar(grep { in_hubspot('deals', $_) && exists $fake->control('GET', 'records/deals/'
		. q1("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$_'"))->{associations}{companies} } @d[0, 1]),
		2, "$v: and in HubSpot");
	like(q1("SELECT last_error FROM hubsync.association_outbox WHERE state = 'failed' AND from_hubsync_id = '$d[2]'"),
		qr/^VALIDATION_ERROR: One or more associations are invalid .*DEAL=$gone is not valid/,
		"$v: the invalid one failed with HubSpot's reason, not marked done");
	q1("DELETE FROM hubsync.association_outbox WHERE state = 'failed'");
}

# ---- archiving the unlabeled type removes the labeled ones too ----------
for my $v ('2026-09', 'legacy')
{
	set_version($v);
	my $co = q1("INSERT INTO hubspot.companies (name) VALUES ('$v primary co') RETURNING hubsync_id");
	my $de = q1("INSERT INTO hubspot.deals (dealname, amount) VALUES ('$v primary deal', 1) RETURNING hubsync_id");
	q1("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id, label)
		VALUES ('deals', '$de', 'companies', '$co', 'Primary'), ('deals', '$de', 'companies', '$co', NULL)");
	ok(drained(), "$v: primary and unlabeled associations created");
	my $did = q1("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$de'");
	is(scalar(@{ $fake->control('GET', "records/deals/$did")->{associations}{companies}[0]{types} }), 2,
		"$v: HubSpot holds both types");
	my $since = $fake->control('GET', 'requests')->{lastSeq};
	q1("DELETE FROM hubspot.associations WHERE from_type = 'deals' AND from_hubsync_id = '$de' AND label IS NULL");
	ok(drained(), "$v: unlabeled archive sent");
	my @arch = grep { $_->{endpoint} && $_->{endpoint} =~ m{labels/archive} }
		@{ $fake->control('GET', "requests?since=$since")->{requests} };
	is($arch[0]{status}, $v eq 'legacy' ? 204 : 200, "$v: archive answered " . ($v eq 'legacy' ? 204 : 200));
	ok(!$fake->control('GET', "records/deals/$did")->{associations}{companies}, "$v: HubSpot dropped the labeled type too");
	is(q1("SELECT count(*) FROM hubspot.associations WHERE from_type = 'deals' AND from_hubsync_id = '$de'"), '0',
		"$v: so does hubspot.associations");
	is(q1("SELECT count(*) FROM hubsync.association_outbox"), '0', "$v: nothing queued back");
}

done_testing();
