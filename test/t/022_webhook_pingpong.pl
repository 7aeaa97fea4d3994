# Ping-pong: an app session and a "rep" in the fake HubSpot edit the same
# deals for 30 seconds (a few hundred edits), webhooks on.  Ownership: the
# default `latest` for every property, and dealname owned by postgres.
# At the end both sides hold identical values, and the number of outbound
# batch write requests is bounded by the genuine edits that need a push
# (app edits, plus rep edits of the postgres-owned property, which are
# reverted): nothing loops, and once quiet, nothing more is sent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 'test/perl';
use HubSync::Node;
use HubSync::FakeHubSpot;
use JSON::PP;

my $SECONDS = 30;
my $NDEALS = 4;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($node, $fake) = HubSync::Node::with_fake('pingpong',
	conf => { 'hubsync.webhook_port' => $port, 'hubsync.batch_linger' => '20ms' });
$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks",
	webhookPropertyChangeOnCreate => JSON::PP::true);
ok($node->poll_query_until('postgres',
	"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
	'webhook worker runs');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# settled -- everything sent both ways and applied
sub settled
{
	for (1 .. 5)
	{
		return 0 unless HubSync::Node::wait_outbox_empty($node);
		my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
		return 0 unless $f->{done};
		return 0 unless $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
		return 1 if q1("SELECT count(*) FROM hubsync.outbox") == 0;
	}
	return 0;
}

# writes -- the outbound batch write requests the fake has seen
sub writes
{
	my $r = $fake->control('GET', 'requests');
	return scalar grep {
		$_->{method} eq 'POST' && $_->{path} =~ m{/crm/v3/objects/deals/batch/(create|update|upsert|archive)$}
	} @{ $r->{requests} };
}

# ---- the records: created by the app, pushed, echoed back ----
q1("INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline) "
	. "SELECT 'deal ' || g, g * 100, 'appointmentscheduled', 'default' FROM generate_series(1, $NDEALS) g");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = $NDEALS FROM hubspot.deals WHERE hs_object_id IS NOT NULL"), 'deals created in HubSpot');
ok(settled(), 'creations settled');
q1("SELECT hubsync.set_owner('deals', 'dealname', 'postgres')");
my @ids = split /\n/, q1("SELECT hs_object_id FROM hubspot.deals ORDER BY hs_object_id");
my $writes_before = writes();

# ---- both sides edit the same records ----
my ($app_edits, $rep_edits, $rep_owned_edits) = (0, 0, 0);
my @stages = qw(appointmentscheduled qualifiedtobuy presentationscheduled decisionmakerboughtin closedwon);
my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed % $_[0]; }
my $end = time + $SECONDS;
my $n = 0;
while (time < $end)
{
	$n++;
	my $id = $ids[ rnd(scalar @ids) ];
	my $what = rnd(10);
	if (rnd(2) == 0)
	{
		# the app: one UPDATE that changes a value is one genuine edit
		my $set = $what < 4 ? "amount = $n.25"
		  : $what < 8 ? "dealstage = '$stages[rnd(scalar @stages)]'"
		  : "dealname = 'app name $n'";
		$app_edits += q1("WITH u AS (UPDATE hubspot.deals SET $set WHERE hs_object_id = $id RETURNING 1) SELECT count(*) FROM u");
	}
	else
	{
		my %props = $what < 4 ? (amount => "$n.75")
		  : $what < 8 ? (dealstage => $stages[ rnd(scalar @stages) ])
		  : (dealname => "rep name $n");
		$fake->control('POST', "ui/deals/$id", { properties => \%props });
		$rep_edits++;
		$rep_owned_edits++ if exists $props{dealname};
	}
	sleep(0.02 + rnd(60) / 1000);
}
note("$n edits in $SECONDS s: $app_edits by the app, $rep_edits by the rep ($rep_owned_edits of dealname)");
ok($app_edits > 20 && $rep_edits > 20, 'both sides edited');

# ---- both sides converge ----
ok(settled(), 'everything settled');
my $diff = '';
for my $id (@ids)
{
	my $rec = $fake->control('GET', "records/deals/$id");
	my $p = $rec->{properties};
	my ($name, $amount, $stage) = split /\|/,
	  q1("SELECT dealname || '|' || coalesce(amount::text, '') || '|' || coalesce(dealstage, '') FROM hubspot.deals WHERE hs_object_id = $id");
	$diff .= "$id dealname local '$name' HubSpot '$p->{dealname}'\n" if $name ne ($p->{dealname} // '');
	$diff .= "$id amount local '$amount' HubSpot '$p->{amount}'\n"
	  if ($amount eq '' ? '' : $amount + 0) ne (($p->{amount} // '') eq '' ? '' : $p->{amount} + 0);
	$diff .= "$id dealstage local '$stage' HubSpot '$p->{dealstage}'\n" if $stage ne ($p->{dealstage} // '');
	$diff .= "$id dealname is a rep's value '$name' although postgres owns it\n" if $name =~ /^rep name/;
}
is($diff, '', 'both sides hold identical values under the ownership rules');
is(q1("SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"), 0, 'no failed events');
is(q1("SELECT count(*) FROM hubsync.dead_letters"), 0, 'no dead letters');

# ---- no loop: pushes bounded by genuine edits, then silence ----
my $writes = writes() - $writes_before;
note("$writes outbound batch write requests for $app_edits app edits and $rep_owned_edits reverts");
ok($writes <= $app_edits + $rep_owned_edits,
	"outbound requests ($writes) bounded by genuine edits ($app_edits + $rep_owned_edits)");
sleep 3;
ok(settled(), 'still settled');
is(writes() - $writes_before, $writes, 'nothing more sent once quiet');
is(q1("SELECT count(*) FROM hubsync.outbox"), 0, 'outbox empty');

$node->stop('fast');
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no worker crashed');
$fake->stop;
done_testing();
