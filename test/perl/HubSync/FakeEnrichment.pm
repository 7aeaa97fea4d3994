# HubSync::FakeEnrichment -- start, drive and stop the fake enrichment
# provider (test/fake_enrichment.py) from TAP tests.  It listens on a free
# loopback port, reports the port on its first stdout line, and is stopped
# by PID.
package HubSync::FakeEnrichment;

use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $json = JSON::PP->new->canonical->allow_nonref;

# start -- launch the fake provider
sub start
{
	my ($class) = @_;
	my $python = $ENV{PYTHON} || 'python3';
	my $script = abs_path(dirname(__FILE__) . '/../../fake_enrichment.py');
	my $pid = open(my $out, '-|', $python, $script, '--port', '0')
	  or die "could not start the fake enrichment provider: $!";
	my $port = <$out>;
	die "the fake enrichment provider did not report a port" unless defined $port;
	chomp $port;
	die "the fake enrichment provider reported \"$port\" instead of a port"
	  unless $port =~ /^\d+$/;
	return bless {
		pid => $pid,
		out => $out,
		port => $port,
		http => HTTP::Tiny->new(timeout => 60, keep_alive => 1),
	}, $class;
}

# url -- the endpoint to store in hubsync.enrichment_providers
sub url { return 'http://127.0.0.1:' . $_[0]->{port} . '/enrich'; }

# control -- a call to /_control/<path>; dies on failure
sub control
{
	my ($self, $method, $path, $body) = @_;
	my %opts = (headers => { 'Content-Type' => 'application/json' });
	$opts{content} = $json->encode($body) if defined $body;
	my $res = $self->{http}->request($method,
		'http://127.0.0.1:' . $self->{port} . "/_control/$path", \%opts);
	die "fake enrichment control $method $path failed with $res->{status}"
	  unless $res->{success};
	return $json->decode($res->{content});
}

# configure -- merge settings (latency_ms, fault, fault_count, scores...)
sub configure
{
	my ($self, %config) = @_;
	return $self->control('POST', 'config', \%config);
}

# stop -- terminate the fake and reap it
sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'TERM', $self->{pid};
	close $self->{out};
	waitpid($self->{pid}, 0);
	delete $self->{pid};
}

sub DESTROY { $_[0]->stop; }

1;
