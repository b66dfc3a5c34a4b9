#!/bin/bash
# make check-mutations: puts each curated mutant of tests/mutants/ (a small realistic bug, as a patch) into a
# scratch copy of the source tree, one at a time, rebuilds, runs the tests its header names (Killed-by:) and
# reports whether every one of them failed. A mutant is killed only when each test it names fails: a test
# that no longer notices its bug is a survivor's cause, named in the report.
#
#   tests/mutants/run.sh [-k] [NAME...]     (from make: make check-mutations [MUTANTS="turn-lease ..."])
#
# NAME picks mutants by the part of the file name after the number. The scratch tree and its build are in
# $MUTANTS_WORKDIR (default: a new directory under ${TMPDIR:-/tmp}), removed at the end unless -k.
# The unmutated tree must pass every named test first, or the run stops: a test that fails anyway would
# "kill" every mutant. Exit status: 0 when every mutant is killed, 1 otherwise, 2 on a set-up error.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
keep=no
if [ "${1:-}" = -k ]; then
	keep=yes
	shift
fi
configure_flags=${MUTANTS_CONFIGURE_FLAGS:---enable-debug}
jobs=${MUTANTS_JOBS:-2}

die() {
	echo "check-mutations: $*" >&2
	exit 2
}

# The mutants asked for, in file order.
patches=()
for p in "$here"/[0-9]*.patch; do
	name=$(basename "$p" .patch)
	name=${name#*-}
	if [ $# -gt 0 ]; then
		want=no
		for a in "$@"; do [ "$a" = "$name" ] && want=yes; done
		[ $want = yes ] || continue
	fi
	patches+=("$p")
done
[ ${#patches[@]} -gt 0 ] || die "no mutant matches '$*' in $here (names: $(cd "$here" && ls [0-9]*.patch | sed 's/^[0-9]*-//; s/\.patch$//' | tr '\n' ' '))"

killers() { sed -n 's/^Killed-by: *//p' "$1" | head -1; }
what() { sed -n 's/^Mutant: *//p' "$1" | head -1; }

work=${MUTANTS_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/crmbridge-mutants.XXXXXX")}
mkdir -p "$work" || die "cannot make $work"
cleanup() { [ $keep = yes ] || rm -rf "$work"; }
trap cleanup EXIT
src=$work/src
build=$work/build
log=$work/log
mkdir -p "$log"
t0=$(date +%s)

# A scratch copy of the tree: git's files when this is a checkout (what would be committed, edits included),
# else the tree as it is (a release tarball).
if [ ! -d "$src" ]; then
	mkdir -p "$src"
	if git -C "$top" rev-parse --show-toplevel >/dev/null 2>&1 && [ "$(git -C "$top" rev-parse --show-toplevel)" = "$top" ]; then
		(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$src" ||
			die "copying the tree from $top failed"
	else
		(cd "$top" && tar cf - --exclude='./build*' --exclude=./.git .) | tar xf - -C "$src" || die "copying $top failed"
	fi
fi
for p in "${patches[@]}"; do
	patch -s -p1 --dry-run -d "$src" <"$p" >/dev/null 2>&1 ||
		die "$(basename "$p") no longer applies to the tree: the code it mutates changed; write it again for the new code"
	for t in $(killers "$p"); do
		case $t in
		tests/unit/*) [ -f "$src/$t.c" ] || die "$(basename "$p"): Killed-by names $t, which is not a test" ;;
		*) [ -f "$src/$t" ] || die "$(basename "$p"): Killed-by names $t, which is not a test" ;;
		esac
	done
done

echo "==> building the scratch copy in $work ($configure_flags)"
if [ ! -f "$build/Makefile" ]; then
	(cd "$src" && ./autogen.sh) >"$log/autogen.log" 2>&1 || die "autogen.sh failed: $log/autogen.log"
	mkdir -p "$build"
	# shellcheck disable=SC2086
	(cd "$build" && "$src/configure" $configure_flags) >"$log/configure.log" 2>&1 || die "configure failed: $log/configure.log"
fi
make -C "$build" -j"$jobs" all >"$log/build.log" 2>&1 || die "the unmutated tree does not build: $log/build.log"

# Runs the named tests in the scratch build; prints each that failed.
run_tests() {
	local out=$1
	shift
	local t stem failed=""
	# Automake names a test's results after it without the extension (test-engine.py: test-engine.trs).
	for t in "$@"; do
		stem=$build/${t%.*}
		case $t in *.py | *.sh) ;; *) stem=$build/$t ;; esac
		rm -f "$stem.trs" "$stem.log"
	done
	make -C "$build" -k -j1 check TESTS="$*" >"$out" 2>&1
	for t in "$@"; do
		stem=$build/${t%.*}
		case $t in *.py | *.sh) ;; *) stem=$build/$t ;; esac
		if [ ! -f "$stem.trs" ] || grep -q '^:global-test-result: \(FAIL\|ERROR\)' "$stem.trs"; then
			failed="$failed $t"
		fi
		[ -f "$stem.log" ] && cp "$stem.log" "$out.$(basename "$stem").log"
	done
	echo "$failed"
}

all_tests=$(for p in "${patches[@]}"; do killers "$p" | tr ' ' '\n'; done | sort -u | tr '\n' ' ')
echo "==> the unmutated tree against every named test: $all_tests"
base_failed=$(run_tests "$log/baseline.out" $all_tests)
if [ -n "$base_failed" ]; then
	echo "not ok - the unmutated tree fails:$base_failed (logs: $log/baseline.out.*; run with -k to keep them)"
	keep=yes
	exit 2
fi

killed=0
survivors=()
n=0
for p in "${patches[@]}"; do
	n=$((n + 1))
	base=$(basename "$p" .patch)
	tests=$(killers "$p")
	m0=$(date +%s)
	patch -s -p1 -d "$src" <"$p" || die "$base: the patch did not apply"
	if ! make -C "$build" -j"$jobs" all >"$log/$base.build" 2>&1; then
		# A mutant that does not compile says nothing about the tests: it is reported, not counted as killed.
		patch -s -R -p1 -d "$src" <"$p" || die "$base: the patch did not come out again"
		echo "not ok $n - $base: does not build ($log/$base.build): write it again"
		survivors+=("$base (does not build)")
		continue
	fi
	# shellcheck disable=SC2086
	failed=$(run_tests "$log/$base.out" $tests)
	patch -s -R -p1 -d "$src" <"$p" || die "$base: the patch did not come out again"
	missed=""
	for t in $tests; do
		case " $failed " in *" $t "*) ;; *) missed="$missed $t" ;; esac
	done
	secs=$(($(date +%s) - m0))
	if [ -z "$missed" ]; then
		killed=$((killed + 1))
		echo "ok $n - $base killed by$failed (${secs} s)"
	else
		echo "not ok $n - $base SURVIVED:$missed passed with the bug in (${secs} s)"
		echo "#   the bug: $(what "$p")"
		survivors+=("$base (not noticed by$missed)")
	fi
done
# The tree back as it was, rebuilt, so a kept scratch build is the real code.
make -C "$build" -j"$jobs" all >"$log/rebuild.log" 2>&1

total=${#patches[@]}
echo "1..$total"
echo "# $killed of $total mutants killed ($((killed * 100 / total))%) in $(($(date +%s) - t0)) s"
for s in "${survivors[@]}"; do echo "# survivor: $s"; done
[ $killed -eq "$total" ]
