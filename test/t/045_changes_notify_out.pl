# The change feed's NOTIFY channel hubsync_changes announces outbound
# changes too: every change HubSpot accepted (create, update, archive, an
# association) is heard once, with the same payload as an inbound change
# plus "direction": "out", and a bulk push announces each of its records.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use lib 'test/perl';
use HubSync::Node;

my ($node, $fake) = HubSync::Node::with_fake('notifyout');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# a session that listens, and every notification it has heard
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN hubsync_changes');
my @heard;

# heard -- poll the listener until $want(payloads heard so far) is true;
# returns the payloads that match $match
sub heard
{
	my ($match, $want) = @_;
	for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
	{
		my $out = $listener->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "hubsync_changes" with payload "(.*)" received/g)
		{
			push @heard, decode_json($1);
		}
		my @hit = grep { $match->($_) } @heard;
		return @hit if $want->(scalar @hit);
		select(undef, undef, undef, 0.1);
	}
	return grep { $match->($_) } @heard;
}

# create
my $ann = $sql->("INSERT INTO hubspot.contacts (email, firstname) VALUES ('ann\@example.com', 'Ann') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'create pushed');
my $hs = $sql->("SELECT hs_object_id FROM hubspot.contacts WHERE hubsync_id = '$ann'");
my ($n) = heard(sub { ($_[0]{hubsync_id} // '') eq $ann }, sub { $_[0] >= 1 });
ok($n, 'create: the outbound change was announced');
is($n->{direction}, 'out', 'create: direction out');
is($n->{object_type}, 'contacts', 'create: object type');
is($n->{hs_object_id}, $hs, 'create: the HubSpot id HubSpot gave');
is($n->{op}, $sql->("SELECT op FROM hubsync.changes WHERE direction = 'out' AND hubsync_id = '$ann'"),
	'create: the operation of the change feed row');
ok((grep { $_ eq 'email' } @{ $n->{changed} }) && (grep { $_ eq 'firstname' } @{ $n->{changed} }),
	'create: the properties sent');
is_deeply([ sort keys %$n ], [qw(changed direction hs_object_id hubsync_id object_type op)],
	'create: the inbound payload keys plus direction');

# update: only what changed
@heard = ();
$sql->("UPDATE hubspot.contacts SET jobtitle = 'CTO' WHERE hubsync_id = '$ann'");
ok(HubSync::Node::wait_outbox_empty($node), 'update pushed');
($n) = heard(sub { ($_[0]{hubsync_id} // '') eq $ann }, sub { $_[0] >= 1 });
ok($n && $n->{op} eq 'update' && $n->{direction} eq 'out', 'update: announced as an outbound update');
is_deeply($n->{changed}, ['jobtitle'], 'update: only the property sent');

# a bulk push: one notification per record, none lost, none twice
@heard = ();
$sql->("INSERT INTO hubspot.contacts (email) SELECT 'bulk' || g || '\@example.com' FROM generate_series(1, 250) g");
ok(HubSync::Node::wait_outbox_empty($node), 'bulk pushed');
my @bulk = heard(sub { ($_[0]{direction} // '') eq 'out' && $_[0]{object_type} eq 'contacts' },
	sub { $_[0] >= 250 });
is(scalar @bulk, 250, 'bulk: 250 outbound notifications');
my %ids = map { $_->{hubsync_id} => 1 } @bulk;
is(scalar keys %ids, 250, 'bulk: one per record');
is($sql->("SELECT count(*) FROM hubsync.changes WHERE direction = 'out' AND properties ->> 'email' LIKE 'bulk%'"),
	'250', 'bulk: as many change feed rows');

# an association HubSpot accepted
@heard = ();
my $co = $sql->("INSERT INTO hubspot.companies (name) VALUES ('Acme') RETURNING hubsync_id");
ok(HubSync::Node::wait_outbox_empty($node), 'company pushed');
$sql->("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id)
	VALUES ('contacts', '$ann', 'companies', '$co')");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hubsync.association_outbox'),
	'association pushed');
my $co_hs = $sql->("SELECT hs_object_id FROM hubspot.companies WHERE hubsync_id = '$co'");
($n) = heard(sub { $_[0]{object_type} eq 'associations' }, sub { $_[0] >= 1 });
ok($n, 'association: announced');
is(join(' ', map { $n->{$_} // '' } qw(direction op from_type from_id to_type to_id)),
	"out insert contacts $hs companies $co_hs", 'association: direction, op and both ends');
like($n->{type_id} // '', qr/^\d+$/, 'association: the type id HubSpot used');

# archive
@heard = ();
$sql->("DELETE FROM hubspot.contacts WHERE hubsync_id = '$ann'");
ok(HubSync::Node::wait_outbox_empty($node), 'delete pushed');
($n) = heard(sub { ($_[0]{hubsync_id} // '') eq $ann }, sub { $_[0] >= 1 });
ok($n && $n->{op} eq 'archive' && $n->{direction} eq 'out' && $n->{hs_object_id} == $hs,
	'archive: announced with the HubSpot id');

# a change that is not accepted is not announced: a dead letter stays silent
@heard = ();
$fake->control('POST', 'faults', { queue => [ { status => 400, match => '/batch/' } ] });
my $bad = $sql->("INSERT INTO hubspot.contacts (email) VALUES ('refused\@example.com') RETURNING hubsync_id");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM hubsync.dead_letters WHERE hubsync_id = '$bad'"),
	'refused change dead-lettered');
$sql->("UPDATE hubspot.companies SET city = 'Oslo' WHERE hubsync_id = '$co'");
ok(HubSync::Node::wait_outbox_empty($node), 'a later change pushed');
my @after = heard(sub { ($_[0]{direction} // '') eq 'out' }, sub { $_[0] >= 1 });
is(join(',', map { $_->{hubsync_id} } @after), $co, 'only the accepted change was announced');

$listener->quit;
$node->stop;
$fake->stop;
done_testing();
