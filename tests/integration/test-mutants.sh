#!/bin/sh
# The curated mutants of tests/mutants/ stay usable (make check-mutations runs them; it takes too long for every
# make check): each patch still applies to the tree as it is, says what bug it is, and names tests that exist
# and that make check runs. A change to the code a mutant mutates shows here first: write the mutant again for
# the new code. TAP.
top=${TOP_SRCDIR:-.}
n=0
fails=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}
if ! command -v patch >/dev/null 2>&1; then
	echo "1..0 # SKIP patch(1) is not installed"
	exit 0
fi
tests=$(sed -n '/^TESTS = /,/^[^\t]/p; /^UNIT_TESTS = /,/^[^\t]/p; /^INTEGRATION_TESTS = /,/^[^\t]/p' "$top/Makefile.am" | tr ' \t\\' '\n\n\n')
count=0
for p in "$top"/tests/mutants/[0-9]*.patch; do
	count=$((count + 1))
	b=$(basename "$p")
	patch -s -p1 --fuzz=0 --dry-run -d "$top" <"$p" >/dev/null 2>&1
	ok $? "$b applies to the tree"
	grep -q '^Mutant: .\{20,\}' "$p"
	ok $? "$b says what bug it is (Mutant:)"
	k=$(sed -n 's/^Killed-by: *//p' "$p" | head -1)
	[ -n "$k" ]
	ok $? "$b names the tests that must kill it (Killed-by:)"
	for t in $k; do
		printf '%s\n' "$tests" | grep -qx "$t"
		ok $? "$b: $t is one of make check's tests"
	done
done
[ "$count" -ge 17 ]
ok $? "the list has its mutants ($count)"
echo "1..$n"
[ "$fails" -eq 0 ]
