# The documentation matches the catalog, and its links resolve.
#
# Every hubsync.* setting, every function of schema hubsync whose name does
# not start with _ (and every function of schema hubspot), and every view
# and table of schemas hubsync and hubspot (but the mirror tables and the
# _-prefixed private ones) must be documented; for each documented view,
# its column table must list exactly the view's columns (so must the column
# table of a documented table, where there is one), and nothing documented
# may be missing from the catalog.  The format (docs/reference.md):
#
#   ## Settings   -- table rows whose first cell names `hubsync.x`
#   ## Functions  -- table rows whose first cell starts `hubsync.f(`
#   #### hubsync.status            -- one heading per view or table, in
#   | column | meaning |           -- reference.md, bi.md or app-developers.md,
#   |---|---|                      -- then its columns, backquoted, in the
#   | `paused` | ... |             -- first cell of a | column | table
#
# Every relative link in README.md, CONTRIBUTING.md and docs/*.md must name
# a file that exists and, with #anchor, a heading of that file (GitHub's
# anchors).  The check is also run on broken copies of the docs, to show
# that it fails.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use HubSync::Node;

my @entry_pages = ('docs/reference.md', 'docs/bi.md', 'docs/app-developers.md');
my @link_pages = ('README.md', 'CONTRIBUTING.md', glob('docs/*.md'));

my $node = HubSync::Node::new_node('docs', create_extension => 1);
my $q = sub { $node->safe_psql('postgres', $_[0]) };
my $list = sub { my $o = $q->($_[0]); return grep { $_ ne '' } split /\n/, $o; };

# --- the catalog
my %cat;
$cat{settings} = { map { $_ => 1 } $list->("SELECT name FROM pg_settings WHERE name LIKE 'hubsync.%'") };
$cat{functions} = { map { $_ => 1 } $list->(q{
	SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE (n.nspname = 'hubsync' AND p.proname !~ '^_') OR n.nspname = 'hubspot'}) };
my %kind = map { split /\|/ } $list->(q{
	SELECT n.nspname || '.' || c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('hubsync', 'hubspot') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
	  AND c.relname !~ '^_'
	  AND NOT (n.nspname = 'hubspot' AND c.relname IN (SELECT object_type FROM hubsync.object_types))});
$cat{relations} = \%kind;
for ($list->(q{
	SELECT a.attrelid::regclass::text, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('hubsync', 'hubspot') AND a.attnum > 0 AND NOT a.attisdropped}))
{
	my ($rel, $col) = split /\|/;
	$cat{columns}{$rel}{$col} = 1;
}
$cat{counters} = { map { $_ => 1 } $list->('SELECT counter FROM hubsync.webhook_stats') };
ok(keys %{ $cat{settings} } > 30 && keys %{ $cat{functions} } > 20 && keys %kind > 30,
	'the catalog lists settings, functions and relations');

# --- reading markdown

sub slurp_lines
{
	my ($f) = @_;
	open(my $fh, '<', $f) or return ();
	my @l = <$fh>;
	chomp @l;
	return @l;
}

# lines outside ``` code blocks (inside ones become empty)
sub prose
{
	my $fence = 0;
	return map {
		if (/^\s*```/) { $fence = !$fence; '' }
		else { $fence ? '' : $_ }
	} @_;
}

# the lines of the "## $title" section
sub section
{
	my ($title, @lines) = @_;
	my ($in, @out) = (0);
	for (@lines)
	{
		if (/^## /) { $in = ($_ eq "## $title"); next; }
		push @out, $_ if $in;
	}
	return @out;
}

sub first_cell { return $_[0] =~ /^\|([^|]*)\|/ ? $1 : ''; }

# GitHub's anchor of a heading's text
sub anchor
{
	my ($t) = @_;
	$t =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;
	$t = lc $t;
	$t =~ s/[^\w\- ]//g;
	$t =~ s/ /-/g;
	return $t;
}

# check -- the problems of the docs under $root against %cat
sub check
{
	my ($root) = @_;
	my @problems;
	my $problem = sub { push @problems, $_[0] };
	my @ref = prose(slurp_lines("$root/docs/reference.md"));
	$problem->('docs/reference.md is missing') unless @ref;

	# settings
	my %doc_settings;
	for (section('Settings', @ref))
	{
		my $cell = first_cell($_);
		$doc_settings{$1} = 1 while $cell =~ /`(hubsync\.\w+)`/g;
	}
	$problem->("setting $_ is not documented") for grep { !$doc_settings{$_} } sort keys %{ $cat{settings} };
	$problem->("setting $_ is documented but not in pg_settings")
	  for grep { !$cat{settings}{$_} } sort keys %doc_settings;

	# functions
	my %doc_functions;
	for (section('Functions', @ref))
	{
		my $cell = first_cell($_);
		$doc_functions{$1} = 1 while $cell =~ /`?((?:hubsync|hubspot)\.\w+)\(/g;
	}
	$problem->("function $_ is not documented") for grep { !$doc_functions{$_} } sort keys %{ $cat{functions} };
	$problem->("function $_ is documented but not in the catalog")
	  for grep { !$cat{functions}{$_} } sort keys %doc_functions;

	# views and tables: #### schema.name, then | column | and | counter | tables
	my (%entry, %where);
	for my $page (@entry_pages)
	{
		my ($cur, $table);
		for (prose(slurp_lines("$root/$page")))
		{
			if (/^#+ /)
			{
				$cur = undef;
				if (/^#### ((?:hubsync|hubspot)\.\w+)\s*$/)
				{
					$cur = $1;
					$problem->("$cur is documented twice ($where{$cur} and $page)") if $where{$cur};
					$where{$cur} = $page;
					$entry{$cur} = { columns => {}, counters => {}, has_columns => 0 };
				}
				next;
			}
			next unless $cur;
			if (/^\|\s*(column|counter)\s*\|/) { $table = $1; $entry{$cur}{has_columns} = 1 if $1 eq 'column'; next; }
			if (!/^\|/) { $table = undef; next; }
			next if !$table || /^\|\s*-/;
			my $cell = first_cell($_);
			$entry{$cur}{ $table . 's' }{$1} = 1 while $cell =~ /`(\w+)`/g;
		}
	}
	for my $rel (sort keys %kind)
	{
		$problem->("$rel is not documented") unless $entry{$rel};
	}
	for my $rel (sort keys %entry)
	{
		if (!$kind{$rel}) { $problem->("$rel is documented ($where{$rel}) but not in the catalog"); next; }
		my $e = $entry{$rel};
		if ($kind{$rel} eq 'v' && !$e->{has_columns})
		{
			$problem->("view $rel has no | column | table in $where{$rel}");
			next;
		}
		next unless $e->{has_columns};
		my $cols = $cat{columns}{$rel};
		$problem->("column $rel.$_ is not documented") for grep { !$e->{columns}{$_} } sort keys %$cols;
		$problem->("column $rel.$_ is documented but not in the catalog")
		  for grep { !$cols->{$_} } sort keys %{ $e->{columns} };
	}
	my $counters = $entry{'hubsync.webhook_stats'}{counters} || {};
	$problem->("webhook counter $_ is not documented") for grep { !$counters->{$_} } sort keys %{ $cat{counters} };
	$problem->("webhook counter $_ is documented but not in hubsync.webhook_stats")
	  for grep { !$cat{counters}{$_} } sort keys %$counters;

	# relative links
	my %anchors;
	my $anchors_of = sub {
		my ($file) = @_;
		return $anchors{$file} //= do {
			my (%a, %seen);
			for (prose(slurp_lines($file)))
			{
				next unless /^#{1,6} +(.*?)\s*#*\s*$/;
				my $base = anchor($1);
				my $n = $seen{$base}++;
				$a{ $n ? "$base-$n" : $base } = 1;
			}
			\%a;
		};
	};
	for my $page (@link_pages)
	{
		my $file = "$root/$page";
		my $dir = dirname($file);
		for (prose(slurp_lines($file)))
		{
			s/`[^`]*`//g;
			while (/\]\(([^)\s]+)\)/g)
			{
				my $link = $1;
				next if $link =~ m{^[a-z]+:}i;
				my ($path, $frag) = $link =~ /^([^#]*)(?:#(.*))?$/;
				my $target = $path eq '' ? $file : "$dir/$path";
				if (!-e $target) { $problem->("$page links to missing $link"); next; }
				next unless defined $frag && $target =~ /\.md$/;
				$problem->("$page links to $link: no such heading")
				  unless $anchors_of->($target)->{$frag};
			}
		}
	}
	return @problems;
}

# --- the docs as they are
my @problems = check('.');
is_deeply(\@problems, [], 'the docs match the catalog and their links resolve')
  or diag(join("\n", @problems));

# --- broken copies: each must be caught
sub broken
{
	my ($file, $edit) = @_;
	my $tmp = tempdir(CLEANUP => 1);
	system('cp', '-r', 'docs', 'README.md', 'CONTRIBUTING.md', $tmp) == 0 or die 'cp failed';
	my $text = slurp_file("$tmp/$file");
	local $_ = $text;
	$edit->() or die "edit of $file did not apply";
	open(my $fh, '>', "$tmp/$file") or die $!;
	print $fh $_;
	close $fh;
	return join("\n", check($tmp));
}
like(broken('docs/reference.md', sub { s/^\| `hubsync\.batch_linger` .*\n//m }),
	qr/setting hubsync\.batch_linger is not documented/, 'a missing setting is caught');
like(broken('docs/reference.md', sub { s/^\| `hubsync\.backfill\(.*\n//m }),
	qr/function hubsync\.backfill is not documented/, 'a missing function is caught');
like(broken('docs/reference.md', sub { s/^#### hubsync\.dead_letters\n/#### hubsync.dead_letter\n/m }),
	qr/hubsync\.dead_letters is not documented.*\n.*hubsync\.dead_letter is documented .* but not in the catalog/s,
	'a misnamed table is caught');
like(broken('docs/reference.md', sub { s/^\| `enrichment` \|.*\n//m }),
	qr/column hubsync\.status\.enrichment is not documented/, 'a missing view column is caught');
like(broken('docs/reference.md', sub { s/^\| `auth` \| as in `hubsync.status` \|\n/| `auth`, `workers` | as in `hubsync.status` |\n/m }),
	qr/column hubsync\.summary\.workers is documented but not in the catalog/, 'a column the view lacks is caught');
like(broken('docs/reference.md', sub { s/^\| `refused_path` \|.*\n//m }),
	qr/webhook counter refused_path is not documented/, 'a missing webhook counter is caught');
like(broken('README.md', sub { s/\(docs\/reference\.md\)/(docs\/reference.md#no-such-heading)/ }),
	qr/README\.md links to docs\/reference\.md#no-such-heading: no such heading/, 'a dead anchor is caught');
like(broken('README.md', sub { s/\(docs\/bi\.md\)/(docs\/bi-missing.md)/ }),
	qr/README\.md links to missing docs\/bi-missing\.md/, 'a dead file link is caught');

done_testing();
