#!/bin/bash
# make check-mutations: puts each curated mutant of tests/mutants/ (a small realistic bug, as a patch) into a
# scratch copy of the source tree, one at a time, rebuilds, runs the tests its header names (Killed-by:) and
# reports whether every one of them failed. A mutant is killed only when each test it names fails: a test
# that no longer notices its bug is a survivor's cause, named in the report.
#
#   tests/mutants/run.sh [-k] [NAME...]     (from make: make check-mutations [MUTANTS="turn-lease ..."])
#
# NAME picks mutants by the part of the file name after the number. The scratch tree and its build are in
# $MUTANTS_WORKDIR (default: a new directory under ${TMPDIR:-/tmp}); what the run made there is removed at the
# end unless -k, or unless something failed (the logs are kept and named). The unmutated tree must pass every
# named test first, or the run stops: a test that fails anyway would "kill" every mutant. A mutant whose tests
# did not run (a build failure, a test that never reported) is not counted as killed.
# Exit status: 0 when every mutant is killed, 1 otherwise, 2 on a set-up error.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
keep=no
if [ "${1:-}" = -k ]; then
	keep=yes
	shift
fi
configure_flags=${MUTANTS_CONFIGURE_FLAGS:---enable-debug}
jobs=${MUTANTS_JOBS:-2}
# A test that hangs ends as a failure to report, not a kill, after this long.
test_timeout=${MUTANTS_TEST_TIMEOUT:-1200}
# Exact hunks only: a mutant must land where it was written, or say that it no longer applies.
PATCH="patch -s -p1 --fuzz=0 --no-backup-if-mismatch"

die() {
	echo "check-mutations: $*" >&2
	keep=yes
	exit 2
}

# The mutants asked for, in file order; a name that matches none is an error.
for a in "$@"; do
	ls "$here"/[0-9]*-"$a".patch >/dev/null 2>&1 ||
		die "no mutant is called '$a' (names: $(cd "$here" && ls [0-9]*.patch | sed 's/^[0-9]*-//; s/\.patch$//' | tr '\n' ' '))"
done
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

made=no
if [ -n "${MUTANTS_WORKDIR:-}" ]; then
	work=$MUTANTS_WORKDIR
	mkdir -p "$work" || die "cannot make $work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/crmbridge-mutants.XXXXXX") || die "cannot make a directory in ${TMPDIR:-/tmp}"
	made=yes
fi
src=$work/src
build=$work/build
log=$work/log
applied=""
# A test that fails half-way (as a killed mutant makes it) may leave its daemon, Redis and doubles running:
# whatever runs from the scratch tree, or in the tests' temporary directories under it, is ended after each run.
reap() {
	local pid
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		[ "$pid" = $$ ] && continue
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$work/" ||
			readlink "/proc/$pid/cwd" 2>/dev/null | grep -q "^$work/tmp"; then
			kill -9 "$pid" 2>/dev/null
		fi
	done
}

# Only what this run made goes: the directory itself if it made it, else its src, build and log.
cleanup() {
	reap
	[ -n "$applied" ] && $PATCH -R -d "$src" <"$applied" >/dev/null 2>&1
	if [ $keep = no ]; then
		if [ $made = yes ]; then rm -rf "$work"; else rm -rf "$src" "$build" "$log" "$work/tmp"; fi
	else
		echo "# kept: $work (src: the tree, build: its build, log: every build and test log)"
	fi
}
trap cleanup EXIT
trap 'echo "check-mutations: interrupted" >&2; exit 130' INT TERM
# Always a fresh copy: a tree left by an interrupted run may still hold a mutant.
rm -rf "$src" "$build" "$log" "$work/tmp"
mkdir -p "$src" "$log" "$work/tmp"
t0=$(date +%s)

# A scratch copy of the tree: git's files when this is a checkout (what would be committed, edits included),
# else an unconfigured source tree as it is (a release tarball, which ships configure).
if git -C "$top" rev-parse --show-toplevel >/dev/null 2>&1 &&
	[ "$(cd "$(git -C "$top" rev-parse --show-toplevel)" && pwd -P)" = "$top" ]; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$src" ||
		die "copying the tree from $top failed"
else
	[ -f "$top/config.status" ] &&
		die "$top is configured in place: run from a git checkout or an unconfigured source tree (build in a separate directory)"
	(cd "$top" && tar cf - --exclude='./crmbridge-mutants.*' --exclude=./.git .) | tar xf - -C "$src" ||
		die "copying $top failed"
fi
for p in "${patches[@]}"; do
	$PATCH --dry-run -d "$src" <"$p" >/dev/null 2>&1 ||
		die "$(basename "$p") no longer applies to the tree: the code it mutates changed; write it again for the new code"
	for t in $(killers "$p"); do
		case $t in
		tests/unit/*) [ -f "$src/$t.c" ] || die "$(basename "$p"): Killed-by names $t, which is not a test" ;;
		*) [ -f "$src/$t" ] || die "$(basename "$p"): Killed-by names $t, which is not a test" ;;
		esac
	done
done

echo "==> building the scratch copy in $work ($configure_flags)"
if [ ! -x "$src/configure" ]; then
	(cd "$src" && ./autogen.sh) >"$log/autogen.log" 2>&1 || die "autogen.sh failed: $log/autogen.log"
fi
mkdir -p "$build"
# shellcheck disable=SC2086
(cd "$build" && "$src/configure" $configure_flags) >"$log/configure.log" 2>&1 || die "configure failed: $log/configure.log"
# The daemon, the tools and the unit tests (make check TESTS= builds the check programs and runs nothing).
build_all() { make -C "$build" -j"$jobs" all >"$1" 2>&1 && make -C "$build" -j"$jobs" check TESTS= >>"$1" 2>&1; }
build_all "$log/build.log" || die "the unmutated tree does not build: $log/build.log"

# Runs the named tests in the scratch build; prints each that failed, and "?name" for one that never reported.
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
	TMPDIR=$work/tmp timeout "$test_timeout" make -C "$build" -k -j1 check TESTS="$*" >"$out" 2>&1
	reap
	for t in "$@"; do
		stem=$build/${t%.*}
		case $t in *.py | *.sh) ;; *) stem=$build/$t ;; esac
		if [ ! -f "$stem.trs" ]; then
			failed="$failed ?$t"
		elif grep -q '^:global-test-result: \(FAIL\|ERROR\)' "$stem.trs"; then
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
	echo "not ok - the unmutated tree fails:$base_failed (a ? did not report); logs: $log/baseline.out*"
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
	$PATCH -d "$src" <"$p" || die "$base: the patch did not apply"
	applied=$p
	if ! build_all "$log/$base.build"; then
		# A mutant that does not compile says nothing about the tests: it is reported, not counted as killed.
		$PATCH -R -d "$src" <"$p" || die "$base: the patch did not come out again"
		applied=""
		echo "not ok $n - $base: does not build ($log/$base.build): write it again"
		survivors+=("$base (does not build)")
		keep=yes
		continue
	fi
	# shellcheck disable=SC2086
	failed=$(run_tests "$log/$base.out" $tests)
	$PATCH -R -d "$src" <"$p" || die "$base: the patch did not come out again"
	applied=""
	missed=""
	silent=""
	for t in $tests; do
		case " $failed " in
		*" $t "*) ;;
		*" ?$t "*) silent="$silent $t" ;;
		*) missed="$missed $t" ;;
		esac
	done
	secs=$(($(date +%s) - m0))
	if [ -z "$missed$silent" ]; then
		killed=$((killed + 1))
		echo "ok $n - $base killed by$failed (${secs} s)"
	else
		[ -n "$missed" ] && echo "not ok $n - $base SURVIVED:$missed passed with the bug in (${secs} s; logs: $log/$base.out*)"
		[ -n "$silent" ] && echo "not ok $n - $base:$silent did not run to the end (timeout or no report; logs: $log/$base.out*)"
		echo "#   the bug: $(what "$p")"
		survivors+=("$base (not noticed by$missed$silent)")
		keep=yes
	fi
done
# The tree back as it was, rebuilt, so a kept scratch build is the real code.
[ $keep = yes ] && build_all "$log/rebuild.log"

total=${#patches[@]}
echo "1..$total"
echo "# $killed of $total mutants killed ($((killed * 100 / total))%) in $(($(date +%s) - t0)) s"
for s in "${survivors[@]}"; do echo "# survivor: $s"; done
[ $killed -eq "$total" ]
