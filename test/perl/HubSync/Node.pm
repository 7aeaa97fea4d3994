# HubSync::Node -- a throwaway PostgreSQL cluster with hubsync preloaded,
# for TAP tests.
package HubSync::Node;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# new_node -- init a cluster with hubsync in shared_preload_libraries and
# the given extra settings; optionally create the extension
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} || {} });
	my $conf = "";
	$conf .= "shared_preload_libraries = 'hubsync'\n" unless $opts{no_preload};
	$conf .= "hubsync.database = 'postgres'\n";
	$conf .= "max_worker_processes = 16\n";
	$conf .= "restart_after_crash = on\n";
	$conf .= "$_ = '$opts{conf}{$_}'\n" for sort keys %{ $opts{conf} || {} };
	$node->append_conf('postgresql.conf', $conf);
	$node->start unless $opts{no_start};
	$node->safe_psql('postgres', 'CREATE EXTENSION hubsync')
	  if $opts{create_extension} && !$opts{no_start};
	return $node;
}

# with_fake -- a fake HubSpot and a node pointed at it, with the
# extension created and a valid token set; returns ($node, $fake)
sub with_fake
{
	my ($name, %opts) = @_;
	require HubSync::FakeHubSpot;
	my $fake = HubSync::FakeHubSpot->start(@{ $opts{fake_args} || [] });
	$fake->configure(%{ $opts{fake_config} }) if $opts{fake_config};
	my %conf = (
		'hubsync.api_base_url' => $fake->url,
		'hubsync.rate_limit' => 190,
		'hubsync.app_id' => 54321,
		%{ $opts{conf} || {} });
	my $node = new_node($name, conf => \%conf, create_extension => 1);
	$node->safe_psql('postgres',
		"SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')")
	  unless $opts{no_credentials};
	return ($node, $fake);
}

# with_webhooks -- a fake HubSpot that delivers webhooks to the node's
# receiver, and that node (extension created, token and client secret
# set); checks that the webhook worker runs.  fake_config: more settings
# of the fake.  Returns ($node, $fake, $port).
sub with_webhooks
{
	my ($name, %opts) = @_;
	require HubSync::FakeHubSpot;
	my $fake = HubSync::FakeHubSpot->start;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $node = new_node($name, create_extension => 1,
		conf => { 'hubsync.webhook_port' => $port, 'hubsync.app_id' => 54321,
			'hubsync.api_base_url' => $fake->url });
	$node->safe_psql('postgres',
		"SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')");
	$fake->configure(webhookUrl => "http://127.0.0.1:$port/hubspot/webhooks",
		%{ $opts{fake_config} || {} });
	ok($node->poll_query_until('postgres',
		"SELECT state = 'running' FROM hubsync.worker_status() WHERE worker = 'hubsync webhook'"),
		'webhook worker runs');
	return ($node, $fake, $port);
}

# webhooks_applied -- the fake delivered every webhook it holds and the
# inbox has nothing pending
sub webhooks_applied
{
	my ($node, $fake) = @_;
	my $f = $fake->control('POST', 'webhooks/flush', { timeoutMs => 30000 });
	return $f->{done} && $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hubsync.inbox WHERE state = 'pending'");
}

# all_settled -- pushes and association changes left (failed ones
# aside), every webhook delivered and applied, and nothing queued again
sub all_settled
{
	my ($node, $fake) = @_;
	return 0 unless $node->poll_query_until('postgres',
		"SELECT (SELECT count(*) FROM hubsync.outbox) = 0
		    AND (SELECT count(*) FROM hubsync.association_outbox WHERE state <> 'failed') = 0");
	return webhooks_applied($node, $fake)
	  && wait_outbox_empty($node);
}

# wait_outbox_empty -- wait until every queued change has left
sub wait_outbox_empty
{
	my ($node, $db) = @_;
	return $node->poll_query_until($db || 'postgres',
		"SELECT count(*) = 0 FROM hubsync.outbox");
}

# worker_pids -- backend_type => pid of the running hubsync workers
sub worker_pids
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql($db || 'postgres',
		"SELECT backend_type, pid FROM pg_stat_activity WHERE backend_type LIKE 'hubsync%' ORDER BY 1");
	my %pids = map { split /\|/ } grep { length } split /\n/, $out;
	return \%pids;
}

# wait_for_workers -- wait until all four workers are in pg_stat_activity
sub wait_for_workers
{
	my ($node, $db) = @_;
	return $node->poll_query_until($db || 'postgres',
		"SELECT count(*) = 4 FROM pg_stat_activity WHERE backend_type IN ('hubsync push', 'hubsync pull', 'hubsync webhook', 'hubsync enrich')");
}

# wait_for_state -- wait until a worker reports a state in worker_status()
sub wait_for_state
{
	my ($node, $worker, $state, $db) = @_;
	return $node->poll_query_until($db || 'postgres',
		"SELECT state = '$state' FROM hubsync.worker_status() WHERE worker = '$worker'");
}

1;
