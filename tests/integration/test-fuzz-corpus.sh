#!/bin/sh
# Every fuzz target's seed corpus and its regressions (inputs that once crashed) replayed through the
# same code, built with the test suite's sanitizers: a crash found by fuzzing stays fixed.
top=${TOP_SRCDIR:-.}
build=${TOP_BUILDDIR:-.}
n=0
failed=0
for t in form signature xmlrpc json2 gemini conf phone state links; do
	n=$((n + 1))
	out=$("$build/tests/fuzz/replay-$t" "$top/tests/fuzz/corpus/$t" "$top/tests/fuzz/regressions/$t" 2>&1)
	if [ $? -eq 0 ]; then
		echo "ok $n - fuzz target $t: $out"
	else
		echo "not ok $n - fuzz target $t"
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
done
echo "1..$n"
[ $failed -eq 0 ]
