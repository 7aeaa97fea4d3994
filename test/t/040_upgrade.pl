# Upgrades: install the oldest released version (0.1.0), ALTER EXTENSION
# hubsync UPDATE, and compare the result object for object with a fresh
# install of the current version.  Generic: it compares whatever the
# install and upgrade scripts create, so it needs no change when they grow.
#
# How: the extension's member objects are listed (pg_identify_object) and
# compared; then they are detached from the extension (pg_depend,
# pg_init_privs) so that pg_dump --schema-only dumps them like user
# objects -- tables, columns, types, defaults, constraints, indexes,
# triggers, functions with their bodies, views, privileges, comments,
# storage parameters -- and the two dumps are compared after stripping
# what may legitimately differ (dump header lines).  Rows of the tables
# (built-in object types, property map) and the pg_dump config entries
# are compared too.  Column order is checked on its own so that a diff
# names it.
#
# The workers also meet a database still at 0.1.0: they must wait with a
# log line and hint naming ALTER EXTENSION hubsync UPDATE, then run after
# it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my ($current) = slurp_file('hubsync.control') =~ /^default_version\s*=\s*'([^']+)'/m;
ok($current, "current version from hubsync.control: $current");
my $oldest = '0.1.0';

# hubsync.database = 'up': the workers watch the upgraded database
my $node = HubSync::Node::new_node('upgrade',
	conf => { 'hubsync.database' => 'up', 'hubsync.reconcile_at' => '' });  # no daily run mid-comparison
$node->safe_psql('postgres', 'CREATE DATABASE up');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

$node->safe_psql('up', "CREATE EXTENSION hubsync VERSION '$oldest'");
is($node->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 'hubsync'"),
	$oldest, "installed $oldest");

# workers: installed version differs from the library's: wait, say why
if ($oldest ne $current)
{
	ok($node->poll_query_until('up',
		"SELECT bool_and(state = 'idle: extension version mismatch') FROM hubsync.worker_status()"),
		'workers wait while the extension is older than the library');
	ok($node->wait_for_log(
		qr/hubsync push worker is idle: extension "hubsync" is at version \Q$oldest\E in database "up" but the library is version \Q$current\E.*\n.*HINT:\s+Run ALTER EXTENSION hubsync UPDATE/),
		'log says which versions and what to run');
	# changes keep queueing meanwhile
	$node->safe_psql('up', "INSERT INTO hubspot.contacts (email) VALUES ('queued\@example.com')");
	is($node->safe_psql('up', 'SELECT count(*) FROM hubsync.outbox'), '1',
		'a change made before the update is queued');
}

$node->safe_psql('up', 'ALTER EXTENSION hubsync UPDATE');
is($node->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 'hubsync'"),
	$current, "ALTER EXTENSION hubsync UPDATE reaches $current");
ok($node->poll_query_until('up',
	"SELECT bool_and(state = 'running') FROM hubsync.worker_status()"),
	'workers run after the update');
is($node->safe_psql('up', 'SELECT count(*) FROM hubsync.outbox'), '1',
	'the queued change survived the update');
$node->safe_psql('up', 'DELETE FROM hubsync.outbox; DELETE FROM hubspot.contacts; DELETE FROM hubsync.outbox');

$node->safe_psql('fresh', 'CREATE EXTENSION hubsync');

# 1. the extension's members, by identity
my $members_sql = q{
	SELECT pg_catalog.string_agg(i.type || ' ' || i.identity, E'\n' ORDER BY i.type, i.identity)
	FROM pg_catalog.pg_depend d
	CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) i
	WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'hubsync')
};
my $members_up = $node->safe_psql('up', $members_sql);
my $members_fresh = $node->safe_psql('fresh', $members_sql);
ok(length($members_fresh) > 0, 'fresh install has members');
report_diff('extension members', $members_up, $members_fresh);

# 2. what pg_dump keeps of the extension's tables (config_dump)
my $config_sql = q{
	SELECT coalesce(pg_catalog.string_agg(c.rel || ' ' || coalesce(c.cond, ''), E'\n' ORDER BY c.rel), '')
	FROM pg_catalog.pg_extension e,
	     LATERAL unnest(e.extconfig::pg_catalog.regclass[]::text[], e.extcondition) AS c(rel, cond)
	WHERE e.extname = 'hubsync'
};
report_diff('pg_extension_config_dump entries',
	$node->safe_psql('up', $config_sql), $node->safe_psql('fresh', $config_sql));

# 3. detach the members, then dump them as ordinary objects
my $detach = q{
	DELETE FROM pg_catalog.pg_init_privs p
	USING pg_catalog.pg_depend d
	WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'hubsync')
	  AND p.classoid = d.classid AND p.objoid = d.objid;
	DELETE FROM pg_catalog.pg_depend d
	WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'hubsync');
	UPDATE pg_catalog.pg_extension SET extconfig = NULL, extcondition = NULL
	WHERE extname = 'hubsync';
};
$node->safe_psql($_, $detach) for ('up', 'fresh');

my %dump;
for my $db ('up', 'fresh')
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'pg_dump', '--schema-only', '--no-publications',
		'--no-subscriptions', '-n', 'hubsync', '-n', 'hubspot', '-d', $node->connstr($db) ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "pg_dump --schema-only of $db") or diag($stderr);
	$dump{$db} = $stdout;
	my ($data, $derr);
	IPC::Run::run([ 'pg_dump', '--data-only', '--inserts', '--rows-per-insert=1',
		'-n', 'hubsync', '-n', 'hubspot', '-d', $node->connstr($db) ],
		'>', \$data, '2>', \$derr) or diag($derr);
	$dump{"$db data"} = $data;
}
ok(length($dump{fresh}) > 10000, 'the dump holds the extension\'s objects');
like($dump{fresh}, qr/CREATE FUNCTION hubsync\.set_credentials/, 'functions are dumped with their definitions');
like($dump{fresh}, qr/COMMENT ON VIEW hubsync\.status/, 'comments are dumped');
like($dump{fresh}, qr/REVOKE ALL ON TABLE hubsync\._credentials FROM PUBLIC|GRANT SELECT ON TABLE hubsync\.object_types TO PUBLIC/,
	'privileges are dumped');

report_diff('schema (column order ignored)', normalise($dump{up}, 1), normalise($dump{fresh}, 1));
report_diff('schema, column order', normalise($dump{up}, 0), normalise($dump{fresh}, 0));
report_diff('rows of the extension\'s tables', data_lines($dump{'up data'}), data_lines($dump{'fresh data'}));

$node->stop;
done_testing();

# normalise -- drop dump comments, settings and blank lines; with
# $sort_columns, sort the column lines of each CREATE TABLE
sub normalise
{
	my ($text, $sort_columns) = @_;
	my @out;
	my @cols;
	my $in_table = 0;
	for my $line (split /\n/, $text)
	{
		next if $line =~ /^--/ || $line =~ /^\s*$/;
		next if $line =~ /^SET |^SELECT pg_catalog\.set_config/;
		next if $line =~ /^\\(un)?restrict /;
		if ($in_table)
		{
			if ($line =~ /^\)/)
			{
				push @out, $sort_columns ? sort @cols : @cols;
				push @out, $line;
				$in_table = 0;
				@cols = ();
			}
			else
			{
				(my $c = $line) =~ s/,\s*$//;
				push @cols, $c;
			}
			next;
		}
		$in_table = 1 if $line =~ /^CREATE TABLE .*\($/;
		push @out, $line;
	}
	return join("\n", @out) . "\n";
}

# data_lines -- the INSERTs of a data dump, sorted, without sequence values
sub data_lines
{
	my ($text) = @_;
	return join("\n", sort grep { /^INSERT / } split /\n/, $text) . "\n";
}

# report_diff -- pass when equal, else fail and show a unified diff
sub report_diff
{
	my ($what, $up, $fresh) = @_;
	if ($up eq $fresh)
	{
		pass("upgraded matches fresh: $what");
		return;
	}
	my $dir = PostgreSQL::Test::Utils::tempdir();
	open(my $a, '>', "$dir/upgraded") or die;
	print $a $up;
	close $a;
	open(my $b, '>', "$dir/fresh") or die;
	print $b $fresh;
	close $b;
	my ($diff, $err);
	IPC::Run::run([ 'diff', '-u', "$dir/upgraded", "$dir/fresh" ], '>', \$diff, '2>', \$err);
	fail("upgraded matches fresh: $what");
	diag("--- upgraded from $oldest, +++ fresh $current install:\n$diff");
}
