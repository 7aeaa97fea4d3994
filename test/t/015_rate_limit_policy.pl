# A 429's policy is matched by its exact name: TEN_SECONDLY_ROLLING waits
# the 10-second window, not the secondly (search) limit's one second,
# although its name and message contain "secondly".  Both with the
# policyName HubSpot sends and with only its message.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;
use JSON::PP;

my ($node, $fake) = HubSync::Node::with_fake('ratepolicy');
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $n = 0;

# new_contact -- insert a contact and return its hubsync_id
sub new_contact
{
	$n++;
	return $sql->("INSERT INTO hubspot.contacts (email) VALUES ('r$n\@example.com') RETURNING hubsync_id");
}

# upserts -- the fake's contacts batch/upsert requests since seq
sub upserts
{
	my ($since) = @_;
	return [ grep { $_->{path} =~ m{/contacts/batch/upsert$} }
		@{ $fake->control('GET', "requests?since=$since")->{requests} } ];
}

new_contact();
ok(HubSync::Node::wait_outbox_empty($node), 'warm-up contact pushed');

# ---- policyName TEN_SECONDLY_ROLLING: the retry is ~10 s away ----
$fake->control('POST', 'faults', { queue => [ { status => 429, policy => 'TEN_SECONDLY_ROLLING',
	match => '/contacts/batch/upsert' } ] });
my $id = new_contact();
ok($node->poll_query_until('postgres',
	"SELECT last_status = 429 FROM hubsync.outbox WHERE hubsync_id = '$id'"), 'ten-secondly 429 seen');
is($sql->("SELECT next_attempt_at > now() + interval '5 s' FROM hubsync.outbox WHERE hubsync_id = '$id'"), 't',
	'TEN_SECONDLY_ROLLING: next attempt after the 10-second window, not after 1 s');
ok(HubSync::Node::wait_outbox_empty($node), 'and then sent');

# ---- no policyName, HubSpot's ten_secondly_rolling message: also 10 s ----
my $seq = $fake->control('GET', 'requests')->{lastSeq};
$fake->control('POST', 'faults', { queue => [ { status => 429, match => '/contacts/batch/upsert',
	contentType => 'application/json',
	body => { status => 'error', message => 'You have reached your ten_secondly_rolling limit.',
		errorType => 'RATE_LIMIT' } } ] });
new_contact();
ok(HubSync::Node::wait_outbox_empty($node), 'message-only ten-secondly 429: sent');
my $r = upserts($seq);
ok(@$r >= 2 && $r->[0]{status} == 429, 'the first try was refused');
cmp_ok($r->[1]{startMs} - $r->[0]{endMs}, '>=', 8000,
	'message naming ten_secondly_rolling: the retry waited the 10-second window');

# ---- the secondly limit (message only): one second is enough ----
$seq = $fake->control('GET', 'requests')->{lastSeq};
$fake->control('POST', 'faults', { queue => [ { status => 429, policy => 'SECONDLY',
	match => '/contacts/batch/upsert' } ] });
new_contact();
ok(HubSync::Node::wait_outbox_empty($node), 'secondly 429: sent');
$r = upserts($seq);
ok(@$r >= 2 && $r->[0]{status} == 429, 'the first try was refused');
cmp_ok($r->[1]{startMs} - $r->[0]{endMs}, '<', 8000, 'the secondly limit waits about a second');

$node->stop;
done_testing();
