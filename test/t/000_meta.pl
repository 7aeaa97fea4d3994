# META.json is valid for PGXN and its version matches hubsync.control and
# the installed extension.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or die "$f: $!"; local $/; return <$fh>; }

my $meta = eval { decode_json(slurp('META.json')) };
ok($meta, 'META.json is valid JSON') or diag $@;
my ($control_version) = slurp('hubsync.control') =~ /^default_version\s*=\s*'([^']+)'/m;
ok($control_version, 'hubsync.control has a default_version');

for my $key (qw(name abstract version maintainer license provides meta-spec))
{
	ok(exists $meta->{$key}, "META.json has required key $key");
}
is($meta->{name}, 'hubsync', 'META.json names hubsync');
is($meta->{version}, $control_version, 'META.json version matches the control file');
is($meta->{provides}{hubsync}{version}, $control_version, 'provides.hubsync.version matches the control file');
ok(-f $meta->{provides}{hubsync}{file}, 'provides.hubsync.file exists');
is($meta->{'meta-spec'}{version}, '1.0.0', 'PGXN meta-spec 1.0.0');
ok(-f "sql/hubsync--$control_version.sql", "install script for $control_version exists");

my $node = HubSync::Node::new_node('meta', create_extension => 1);
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'hubsync'"),
	$control_version, 'installed version matches the control file');
$node->stop;

done_testing();
