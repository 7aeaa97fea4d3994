# META.json is valid for PGXN and its version matches hubsync.control and
# the installed extension; the SQL sources define each function and view
# once, and the scripts built from them are not tracked.
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

# The SQL sources (sql/sources.mk lists them; the modfiles are in
# sql/updates/): every function and view is defined in exactly one of them,
# as the install and every update script are built from the same files.
(my $mk = slurp('sql/sources.mk')) =~ s/#.*$//mg;
my @listed = $mk =~ m{(sql/\S+\.sql)}g;
ok(@listed > 10, 'sql/sources.mk lists the SQL sources');
ok(-f $_, "source $_ exists") for @listed;
my %listed = map { $_ => 1 } @listed;
for my $f (map { glob("sql/$_/*.sql") } qw(schema functions data views))
{
	ok($listed{$f}, "$f is listed in sql/sources.mk");
}
my @updates = glob('sql/updates/*.sql');
ok(@updates > 0, 'sql/updates holds the modfiles');
my %defined;
for my $f (@listed, @updates)
{
	my $text = slurp($f);
	while ($text =~ /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|VIEW)\s+([\w.]+)/mgi)
	{
		push @{ $defined{ lc("$1 $2") } }, $f;
	}
}
ok(scalar(keys %defined) > 100, 'functions and views found in the sources');
my @twice = grep { @{ $defined{$_} } > 1 } sort keys %defined;
is(join("\n", map { "$_: @{ $defined{$_} }" } @twice), '',
	'no function or view is defined twice in the SQL sources');
# the built scripts are make's, never kept in git
my @built = ("sql/hubsync--$control_version.sql", map { "sql/hubsync--$_--$control_version.sql" }
	split ' ', ($mk =~ /^SQL_UPDATE_FROM\s*=\s*(.*)$/m)[0]);
like(slurp($_), qr/Built by make from the files sql\/sources\.mk lists/, "$_ is built by make") for @built;
like(slurp('.gitignore'), qr{^/sql/hubsync--\*\.sql$}m, '.gitignore keeps the built scripts out of git');
SKIP:
{
	my $tracked = `git ls-files -- sql 2>/dev/null`;
	skip 'not a git checkout', 1 if $? != 0 || $tracked eq '';
	is(join(' ', grep { m{^sql/hubsync--[^/]*\.sql$} } split /\n/, $tracked), '',
		'no built script is tracked by git');
}

my $node = HubSync::Node::new_node('meta', create_extension => 1);
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'hubsync'"),
	$control_version, 'installed version matches the control file');
$node->stop;

done_testing();
