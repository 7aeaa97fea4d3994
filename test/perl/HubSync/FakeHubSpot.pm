# HubSync::FakeHubSpot -- start, drive and stop the bundled fake HubSpot
# (test/fake_hubspot.py) from TAP tests.  It listens on a free loopback
# port, reports the port on its first stdout line, and is stopped by PID.
package HubSync::FakeHubSpot;

use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use Test::More;

my $json = JSON::PP->new->canonical->allow_nonref;

# script -- absolute path of the fake server
sub script
{
	return abs_path(dirname(__FILE__) . '/../../fake_hubspot.py');
}

# start -- launch the fake; extra command-line arguments may be passed
sub start
{
	my ($class, @args) = @_;
	my $python = $ENV{PYTHON} || 'python3';
	my $pid = open(my $out, '-|', $python, script(), '--port', '0', @args)
	  or die "could not start the fake HubSpot: $!";
	my $port = <$out>;
	die "the fake HubSpot did not report a port" unless defined $port;
	chomp $port;
	die "the fake HubSpot reported \"$port\" instead of a port"
	  unless $port =~ /^\d+$/;
	my $self = bless {
		pid => $pid,
		out => $out,
		port => $port,
		http => HTTP::Tiny->new(timeout => 60, keep_alive => 1),
	}, $class;
	return $self;
}

sub port { return $_[0]->{port}; }

# url -- base URL to give hubsync.api_base_url
sub url { return 'http://127.0.0.1:' . $_[0]->{port}; }

# request -- one HTTP call; returns (status, decoded body or raw text)
sub request
{
	my ($self, $method, $path, $body, $headers) = @_;
	my %opts = (headers => { 'Content-Type' => 'application/json', %{ $headers || {} } });
	$opts{content} = ref $body ? $json->encode($body) : $body if defined $body;
	my $res = $self->{http}->request($method, $self->url . $path, \%opts);
	my $decoded = $res->{content};
	if (defined $decoded && length $decoded)
	{
		my $d = eval { $json->decode($decoded) };
		$decoded = $d if defined $d;
	}
	return wantarray ? ($res->{status}, $decoded, $res->{headers}) : $decoded;
}

# control -- a call to the fake's /_fake/ control API; dies on failure
sub control
{
	my ($self, $method, $path, $body) = @_;
	my ($status, $decoded) = $self->request($method, "/_fake/$path", $body);
	die "fake HubSpot control $method /_fake/$path failed with $status: "
	  . (ref $decoded ? $json->encode($decoded) : ($decoded // ''))
	  unless $status >= 200 && $status < 300;
	return $decoded;
}

# configure -- merge settings into the fake's configuration
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
	# keep the test's exit status: waitpid sets $? (-1 when something else
	# reaped the fake already), and DESTROY may run after the test ended
	local $?;
	close $self->{out};
	waitpid($self->{pid}, 0);
	delete $self->{pid};
}

sub DESTROY { $_[0]->stop; }

1;
