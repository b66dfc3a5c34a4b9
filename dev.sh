#!/bin/sh
# crmbridge developer entry point, for a fresh Debian 12 machine.
#
#   ./dev.sh run    install what is needed, build, start a private Redis if
#                   REDIS_URL is not set, and run crmbridged in the foreground
#   ./dev.sh test   install what is needed, build with warnings as errors and
#                   sanitizers, run the whole test suite, print "N passed, N failed"
#   ./dev.sh ctl …  crmbridgectl against that daemon (chat, status, analytics, leads, …)
#   ./dev.sh fuzz [S] fuzz every parser for S seconds each (clang, libFuzzer)
#   ./dev.sh package  build the Debian package into build-deb/ and check it with lintian
#   ./dev.sh deps   only install the Debian packages
#
# Installing packages needs root (or sudo). Builds go to build/ and build-test/,
# run-time files to run/; all three are ignored by git. run takes CRMBRIDGE_LISTEN
# (127.0.0.1:8080) and CRMBRIDGE_SINK_PORT (8089, the reply sink) to move its ports.
set -eu
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

# What building and running need (libjs-chart.js: the dashboard's charts); the tests also need TEST_PACKAGES
# (promtool for the shipped alert rules, nginx and caddy for the reverse-proxy examples, clang for the fuzzers,
# Debian's headless Chromium and its WebDriver for the dashboard), the package PACKAGE_PACKAGES.
PACKAGES="build-essential autoconf automake libtool pkgconf \
libcurl4-openssl-dev libxml2-dev libjansson-dev libhiredis-dev libgcrypt20-dev \
libmicrohttpd-dev libsystemd-dev libinih-dev libpsl-dev redis-server python3 systemd curl libjs-chart.js"
TEST_PACKAGES="prometheus clang nginx caddy openssl chromium chromium-driver"
PACKAGE_PACKAGES="debhelper lintian fakeroot git"

say() { printf '==> %s\n' "$*" >&2; }

deps() {
	missing=""
	for p in $PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# build DIR [configure flags...]: configures once, then builds incrementally.
build() {
	dir=$1
	shift
	if [ -f config.status ]; then
		# Configured by hand in the source directory (README, "Building by hand"): automake cannot also
		# build in a separate directory until that is cleaned.
		say "the source directory was configured by hand (./configure here): cleaning it (make distclean) to build in $dir/"
		make distclean >/dev/null 2>&1 || rm -f config.status config.h Makefile
	fi
	[ -x configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] || ./autogen.sh >/dev/null 2>&1
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ "$dir/config.status" -ot configure ]; then
		(cd "$dir" && "$top/configure" "$@" >/dev/null)
	fi
	make -C "$dir" -j"$(nproc)" >/dev/null
}

# port_taken HOST:PORT: true when something accepts connections there.
port_taken() {
	curl -s -o /dev/null --max-time 2 "http://$1/" 2>/dev/null
	[ $? -ne 7 ]
}

cmd_run() {
	deps
	listen=${CRMBRIDGE_LISTEN:-127.0.0.1:8080}
	sink=${CRMBRIDGE_SINK_PORT:-8089}
	if port_taken "$listen"; then
		say "$listen is already in use by another process: stop it, or choose another address, e.g."
		say "  CRMBRIDGE_LISTEN=127.0.0.1:8090 ./dev.sh run"
		exit 1
	fi
	if port_taken "127.0.0.1:$sink"; then
		say "127.0.0.1:$sink (the reply sink of crmbridgectl chat/replay) is already in use: stop what holds it,"
		say "or choose another port, e.g. CRMBRIDGE_SINK_PORT=8099 ./dev.sh run"
		exit 1
	fi
	say "building"
	build build
	mkdir -p run/state
	redis_started=""
	if [ -z "${REDIS_URL:-}" ]; then
		say "starting a private Redis on run/redis.sock"
		if ! redis-cli -s "$top/run/redis.sock" ping >/dev/null 2>&1; then
			redis-server --port 0 --unixsocket "$top/run/redis.sock" --unixsocketperm 700 \
				--dir "$top/run" --save "" --appendonly no --daemonize yes \
				--pidfile "$top/run/redis.pid" --logfile "$top/run/redis.log"
			redis_started=yes
		fi
		REDIS_URL="unix://$top/run/redis.sock"
		export REDIS_URL
	fi
	# The embedded set-up: a private configuration in run/ (mode 0600: it holds the development
	# signing token). Replies go to the reply sink that crmbridgectl chat/replay runs on
	# 127.0.0.1:8089; without ODOO_URL leads go to the lead journal run/state/leads.jsonl.
	# Variables set in the environment (ODOO_*, GOOGLE_API_KEY, TWILIO_*, ...) win over this file.
	conf="$top/run/crmbridge.conf"
	umask 077
	cat >"$conf" <<EOF2
# Written by ./dev.sh run; rewritten at each run.
[server]
listen = $listen
public_url = http://$listen
state_dir = $top/run/state

[redis]
url = $REDIS_URL

[engine]
coalesce_window = 1s

[twilio]
account_sid = AC$(printf '%s' "dev-$(hostname)" | md5sum | cut -c1-32)
auth_token = dev-token-$(id -u)-$(hostname)
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:$sink
status_callback = no
EOF2
	umask 022
	build/crmbridged -f "$conf" &
	daemon=$!
	# Ctrl-C (or the end) stops the daemon and the Redis this run started.
	stop_all() {
		kill -TERM "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
		if [ -n "$redis_started" ]; then
			redis-cli -s "$top/run/redis.sock" shutdown nosave >/dev/null 2>&1 || true
		fi
	}
	trap 'stop_all; exit 130' INT TERM
	i=0
	until curl -sf "http://$listen/health" >/dev/null 2>&1; do
		i=$((i + 1))
		if ! kill -0 "$daemon" 2>/dev/null; then
			say "crmbridged exited at start (its messages are above)"
			stop_all
			exit 1
		fi
		[ $i -gt 100 ] && { say "crmbridged did not start"; stop_all; exit 1; }
		sleep 0.1
	done
	say "replaying the furniture-shop conversation (tests/data/conversations/es-sofa-complete.json)"
	build/crmbridgectl -c "$conf" replay --reset tests/data/conversations/es-sofa-complete.json || true
	if [ -z "${ODOO_URL:-}" ]; then
		say "the lead journal (build/crmbridgectl -c run/crmbridge.conf leads):"
		build/crmbridgectl -c "$conf" leads || true
	fi
	say "the admin dashboard: open this one-time login link in a browser (./dev.sh ctl dashboard makes another):"
	build/crmbridgectl -c "$conf" dashboard || true
	say "crmbridged keeps running on http://$listen; Ctrl-C stops. In another terminal:"
	say "  ./dev.sh ctl chat        talk to the bot as a customer"
	say "  ./dev.sh ctl status      (also: analytics, leads, conversation show +573001112233, dead-letters)"
	status=0
	wait "$daemon" || status=$?
	trap - INT TERM
	stop_all
	return "$status"
}

# ctl ARGS: crmbridgectl against the daemon that ./dev.sh run started.
cmd_ctl() {
	[ -x build/crmbridgectl ] && [ -f run/crmbridge.conf ] || { say "start it first: ./dev.sh run"; exit 1; }
	exec build/crmbridgectl -c run/crmbridge.conf "$@"
}

cmd_test() {
	deps $TEST_PACKAGES
	say "building with --enable-debug --enable-sanitizers"
	build build-test --enable-debug --enable-sanitizers
	say "running the test suite"
	status=0
	make -C build-test -j"$(nproc)" check >build-test/check.out 2>&1 || status=$?
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' build-test/check.out | grep -vE '^PASS:' || true
	if [ "$status" -ne 0 ]; then
		grep -qE '^# TOTAL:' build-test/check.out || tail -n 40 build-test/check.out
		for log in $(grep -lE '^(not ok|ERROR|FAIL)' build-test/tests/*/*.log 2>/dev/null); do
			say "$log"
			tail -n 40 "$log"
		done
	fi
	# A build error runs no test: count it as a failure, never as "0 failed".
	summary build-test/check.out | awk -v st="$status" '{ if (st != 0 && $3 == 0) $3 = 1; print }' \
		>build-test/summary.txt
	cat build-test/summary.txt
	return "$status"
}

# fuzz [SECONDS]: builds the libFuzzer targets with clang in build-fuzz/ and runs each for SECONDS (30).
cmd_fuzz() {
	deps clang
	say "building the fuzz targets (clang, libFuzzer, ASan, UBSan)"
	CC=clang build build-fuzz --enable-fuzzing
	say "fuzzing each target for ${1:-30} s"
	make -C build-fuzz --no-print-directory fuzz FUZZ_TIME="${1:-30}"
}

# package: the Debian package from a copy of the committed and working-tree files (so the checkout's own
# builds are untouched), into build-deb/, then lintian; prints lintian's errors and warnings.
cmd_package() {
	deps $PACKAGE_PACKAGES
	rm -rf build-deb
	mkdir -p build-deb/crmbridge
	git ls-files -co --exclude-standard | grep -v '^build' | tar -cf - -T - | tar -xf - -C build-deb/crmbridge
	say "dpkg-buildpackage -us -uc -b (build-deb/build.log)"
	if ! (cd build-deb/crmbridge && dpkg-buildpackage -us -uc -b) >build-deb/build.log 2>&1; then
		tail -n 40 build-deb/build.log
		say "dpkg-buildpackage failed"
		return 1
	fi
	ls build-deb/*.deb
	say "lintian"
	lintian --fail-on error,warning build-deb/*.changes || return 1
	# What the package must hold, where docs/DEPLOY.md says it is.
	deb=$(ls build-deb/crmbridge_*_amd64.deb)
	mkdir -p build-deb/control build-deb/root
	dpkg-deb -e "$deb" build-deb/control && dpkg-deb -x "$deb" build-deb/root || return 1
	bad=0
	for f in usr/sbin/crmbridged usr/bin/crmbridgectl lib/systemd/system/crmbridged.service \
		etc/crmbridge/crmbridge.conf usr/share/man/man8/crmbridged.8.gz usr/share/man/man5/crmbridge.conf.5.gz \
		usr/share/man/man1/crmbridgectl.1.gz usr/share/doc/crmbridge/DEPLOY.md.gz \
		usr/share/doc/crmbridge/examples/crmbridge-nginx.conf usr/share/doc/crmbridge/examples/Caddyfile \
		usr/share/doc/crmbridge/examples/crmbridge-alerts.yml usr/share/doc/crmbridge/examples/crmbridge-scrape.yml; do
		[ -e "build-deb/root/$f" ] || { say "missing from the package: /$f"; bad=1; }
	done
	grep -qx /etc/crmbridge/crmbridge.conf build-deb/control/conffiles || { say "crmbridge.conf is not a conffile"; bad=1; }
	grep -qx 'ExecStart=/usr/sbin/crmbridged' build-deb/root/lib/systemd/system/crmbridged.service &&
		grep -qx 'Environment=CRMBRIDGE_CONFIG=/etc/crmbridge/crmbridge.conf' \
			build-deb/root/lib/systemd/system/crmbridged.service || { say "the unit's paths are not /usr/sbin and /etc"; bad=1; }
	build-deb/root/usr/sbin/crmbridged --version | grep -q "$(sed -n 's/^crmbridge (\([^)]*\)).*/\1/p;q' debian/changelog)" ||
		{ say "the daemon's version is not the package's"; bad=1; }
	[ $bad -eq 0 ] && say "package OK: $deb"
	return $bad
}

# summary FILE: turns Automake's counts into "N passed, N failed[, N skipped]".
summary() {
	awk '/^# PASS:/ {p+=$3} /^# XFAIL:/ {p+=$3} /^# FAIL:/ {f+=$3} /^# XPASS:/ {f+=$3} /^# ERROR:/ {f+=$3}
	     /^# SKIP:/ {s+=$3}
	     END { if (s > 0) printf "%d passed, %d failed, %d skipped\n", p, f, s; else printf "%d passed, %d failed\n", p, f }' "$1"
}

case "${1:-}" in
run) cmd_run ;;
fuzz)
	shift
	cmd_fuzz "$@"
	;;
ctl)
	shift
	cmd_ctl "$@"
	;;
test) cmd_test ;;
package) cmd_package ;;
deps) deps ;;
summary) summary "$2" ;;
*)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
