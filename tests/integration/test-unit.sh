#!/bin/sh
# Checks the generated systemd unit: the sandbox scores 2.0 or lower in
# `systemd-analyze security --offline=yes`, and the unit declares what the
# daemon implements (notify, watchdog, reload). TAP output.
unit="${TOP_BUILDDIR:-.}/systemd/crmbridged.service"
n=0
fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }

if [ ! -f "$unit" ]; then
	echo "1..0 # SKIP $unit not built"
	exit 0
fi
for kv in Type=notify WatchdogSec= 'ExecReload=/bin/kill -HUP $MAINPID' DynamicUser=yes StateDirectory=crmbridge \
	'ExecStartPre=' NotifyAccess=main; do
	grep -qF "$kv" "$unit"
	ok $? "unit has $kv"
done
grep -q '^ExecStart=/.*/crmbridged$' "$unit"
ok $? "ExecStart points at the installed daemon"
# A leak or a flood is contained by the cgroup: MemoryHigh= (reclaim and throttle) below MemoryMax= (OOM kill,
# then Restart=on-failure), both in M so they compare.
high=$(sed -n 's/^MemoryHigh=\([0-9][0-9]*\)M$/\1/p' "$unit")
max=$(sed -n 's/^MemoryMax=\([0-9][0-9]*\)M$/\1/p' "$unit")
[ -n "$max" ] && [ "$max" -ge 128 ]
ok $? "unit has MemoryMax= (${max:-none}M, at least 128M)"
[ -n "$high" ] && [ -n "$max" ] && [ "$high" -lt "$max" ]
ok $? "and MemoryHigh= below it (${high:-none}M)"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "# systemd-analyze not installed (apt-get install systemd)"
	echo "1..$n"
	exit $fail
fi
out=$(systemd-analyze security --offline=yes "$unit" 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for crmbridged.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security --offline=yes: exposure $score"
[ -n "$score" ]
ok $? "systemd-analyze security gives a score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'
ok $? "exposure $score is 2.0 or lower"
echo "1..$n"
exit $fail
