# src/ keeps its one-way dependency rule (scripts/check-layout.py):
# util <- core <- bgw <- hubspot <- {push, pull, webhook, enrich}, no
# feature including or calling another.  The checker itself is shown to
# catch a violation, on a copy of the tree.
use strict;
use warnings;
use File::Copy;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;

my $out = `python3 scripts/check-layout.py 2>&1`;
is($?, 0, 'src/ has no include or call against the area order') or diag($out);

# a copy with a pull file including a push header and calling into push/
my $tmp = tempdir(CLEANUP => 1);
make_path("$tmp/scripts");
copy('scripts/check-layout.py', "$tmp/scripts/check-layout.py") or die $!;
system('cp', '-r', 'src', "$tmp/src") == 0 or die 'cp failed';
my $victim = "$tmp/src/pull/poll.c";
my $text = slurp_file($victim);
$text =~ s/^(#include "core\/hubsync.h"\n)/$1#include "push\/push.h"\n/m or die 'no include to follow';
$text .= "\nstatic void poke(void) { hubsync_outbox_insert_direct(NULL, 0, true, 0, NULL, 0, NULL); }\n";
open(my $fh, '>', $victim) or die $!;
print $fh $text;
close $fh;
$out = `python3 $tmp/scripts/check-layout.py 2>&1`;
isnt($?, 0, 'the checker fails on a violation');
like($out, qr{pull/poll\.c includes "push/push\.h"}, 'it names a feature including another\'s header');
like($out, qr{pull/poll\.c calls hubsync_outbox_insert_direct \(defined in push/\)},
	'and a feature calling another\'s function');

done_testing();
