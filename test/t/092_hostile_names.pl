# Hostile names: HubSpot property names (and user-supplied object and
# property names) are data, never SQL.  A property named like an injection,
# Unicode, spaces, quotes and 255 characters syncs out and back in through
# the fake HubSpot without harm.
use strict;
use warnings;
use utf8;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Encode qw(decode_utf8 encode_utf8);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;

my ($node, $fake) = HubSync::Node::with_webhooks('hostile',
	fake_config => { strictPropertyNames => JSON::PP::false });

my $json = JSON::PP->new->canonical->utf8;
sub q1 { return decode_utf8($node->safe_psql('postgres', encode_utf8($_[0]))); }
# fcall -- a call to the fake with UTF-8 JSON both ways
sub fcall
{
	my ($method, $path, $data) = @_;
	my $r = $fake->{http}->request($method, $fake->url . $path, { headers => {
		'Content-Type' => 'application/json', Authorization => 'Bearer test-token' },
		defined $data ? (content => $json->encode($data)) : () });
	die "fake $method $path: $r->{status} $r->{content}" if $r->{status} >= 300 && $path =~ m{^/_fake/};
	return ($r->{status}, length($r->{content} // '') ? eval { $json->decode($r->{content}) } : undef);
}
# lit -- a SQL literal (dollar-quoted, the names hold quotes)
sub lit { return '$zz9$' . $_[0] . '$zz9$'; }
sub settled
{
	my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	return $f->{done} && $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
}

my %names = (
	injection => 'x"; DROP TABLE hubspot.deals; --',
	quote => "o'brien\\'; DROP TABLE hubspot.deals; --",
	unicode => 'prénom_ünïcødé_日本語_✓',
	spaces => 'a name with spaces',
	long => ('p' x 250) . '_long',
	dollar => '$q$ $$ %I %s \\N',
);
is(length($names{long}), 255, 'a 255-character name');
for my $k (sort keys %names)
{
	my ($st) = fcall('POST', '/crm/v3/properties/deals',
		{ name => $names{$k}, label => $k, type => 'string', fieldType => 'text',
		  groupName => 'dealinformation' });
	is($st, 201, "property '$k' created in the fake");
}

# --- out: a row carrying every hostile name is pushed
my %vals = map { $names{$_} => "value of $_ ✓" } keys %names;
my $props = $json->encode(\%vals);
my $id = q1("INSERT INTO hubspot.deals (dealname, pipeline, dealstage, properties)
	VALUES ('Hostile', 'default', 'appointmentscheduled', " . lit(decode_utf8($props)) . ") RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'the insert left the outbox');
my $hs = q1("SELECT hs_object_id FROM hubspot.deals WHERE hubsync_id = '$id'");
like($hs, qr/^\d+$/, 'created in HubSpot');
my (undef, $rec) = fcall('GET', "/_fake/records/deals/$hs");
for my $k (sort keys %names)
{
	is($rec->{properties}{ $names{$k} }, "value of $k ✓", "'$k' value in HubSpot");
}

# --- out: an update of each
my $upd = $json->encode({ map { $names{$_} => "new $_" } keys %names });
q1("UPDATE hubspot.deals SET properties = properties || " . lit(decode_utf8($upd)) . " WHERE hubsync_id = '$id'");
ok(HubSync::Node::wait_outbox_empty($node), 'the update left the outbox');
(undef, $rec) = fcall('GET', "/_fake/records/deals/$hs");
is(scalar(grep { ($rec->{properties}{ $names{$_} } // '') eq "new $_" } keys %names), scalar(keys %names),
	'every updated value in HubSpot');
is(q1('SELECT count(*) FROM hubsync.dead_letters'), '0', 'no dead letters');

# --- in: a rep edits each property; webhooks bring them back
ok(settled(), 'echoes settled');
fcall('POST', "/_fake/ui/deals/$hs", { properties => { map { $names{$_} => "rep $_ ✓" } keys %names } });
ok(settled(), 'the rep\'s edits were delivered and applied');
for my $k (sort keys %names)
{
	is(q1("SELECT properties ->> " . lit($names{$k}) . " FROM hubspot.deals WHERE hubsync_id = '$id'"),
		"rep $k ✓", "'$k' value applied from HubSpot");
}
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), '0', 'no failed inbox events');

# --- a rep creates a record with them
my (undef, $created) = fcall('POST', '/_fake/ui/deals', { properties => { dealname => 'Rep made',
	pipeline => 'default', dealstage => 'appointmentscheduled', map { $names{$_} => "c $_" } keys %names } });
ok(settled(), 'creation applied');
is(q1("SELECT properties ->> " . lit($names{injection}) . " FROM hubspot.deals WHERE hs_object_id = $created->{id}"),
	'c injection', 'a created record carries the hostile property');

# --- user-supplied names in the SQL API
q1("SELECT hubsync.set_owner('deals', " . lit($names{injection}) . ", 'postgres')");
is(q1("SELECT owner FROM hubsync.field_owners WHERE property = " . lit($names{injection})), 'postgres',
	'set_owner stores a hostile property name as data');
my $u = q1("SELECT hubsync.upsert('deals', " . lit($names{injection}) . ", 'k1', '{\"dealname\":\"Upserted\"}')");
like($u, qr/^[0-9a-f-]{36}$/, 'upsert keyed on a hostile property name');
is(q1("SELECT hubsync.upsert('deals', " . lit($names{injection}) . ", 'k1', '{}')"), $u,
	'and finds the row again by it');
for my $fn ("hubsync.pause(" . lit($names{injection}) . ")",
	"hubsync.upsert(" . lit($names{injection}) . ", 'email', 'a', '{}')",
	"hubsync.await_synced(" . lit('deals; DROP TABLE hubspot.deals') . ", gen_random_uuid())")
{
	my ($rc, $out, $err) = $node->psql('postgres', encode_utf8("SELECT $fn"));
	ok($rc != 0 && $err =~ /ERROR/ && $err !~ /syntax error/, "a hostile object type is refused cleanly: $fn")
	  or diag($err);
}

# --- nothing was harmed
is(q1("SELECT to_regclass('hubspot.deals') IS NOT NULL"), 't', 'hubspot.deals still exists');
is(q1("SELECT count(*) FROM hubspot.deals"), '3', 'with its rows');
ok(!$node->log_contains('syntax error'), 'no SQL syntax error anywhere in the server log');
my @errors = grep { /ERROR|WARNING/ } split /\n/, slurp_file($node->logfile);
is(scalar(grep { !/ERROR:  unknown object type/ } @errors), 0,
	'no other error or warning in the server log (only the three refusals above)')
  or diag(join("\n", @errors));

done_testing();
