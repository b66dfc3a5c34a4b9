#!/bin/sh
# docs/screenshot.sh [BUILD_DIR]: remakes the README's pictures of the admin dashboard (docs/dashboard.png,
# docs/dashboard-conversation.png, docs/dashboard-phone.png). They are what tests/integration/test-dashboard.py
# sees: a real crmbridged and redis-server, the test's three conversations, Debian's headless Chromium at
# 1280 px and at a phone's 390 px. BUILD_DIR is a configured build (default build-test/, which ./dev.sh test
# makes); Chromium and its driver come with ./dev.sh test's packages.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-test}
if [ ! -f "$build/Makefile" ]; then
	echo "docs/screenshot.sh: $build is not a configured build: run ./dev.sh test first, or give one" >&2
	exit 1
fi
DASHBOARD_SCREENSHOTS=$top/docs make -C "$build" --no-print-directory check \
	TESTS=tests/integration/test-dashboard.py >/dev/null || {
	echo "docs/screenshot.sh: test-dashboard.py failed: $build/tests/integration/test-dashboard.log" >&2
	exit 1
}
ls -l "$top"/docs/dashboard*.png
