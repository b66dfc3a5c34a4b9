#!/bin/sh
# make install keeps the admin's configuration (#21): the sample goes to crmbridge.conf.sample every time and to
# crmbridge.conf only where there is none; uninstalling removes crmbridge.conf only while it is still the sample.
# Run on the configuration's install rule (install-data-local) into a scratch DESTDIR. TAP.
build=${TOP_BUILDDIR:-.}
dest=$(mktemp -d /tmp/crmb-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
n=0
fail=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi
}
sysconf=$(sed -n 's/^sysconfdir = //p' "$build/Makefile")
prefix=$(sed -n 's/^prefix = //p' "$build/Makefile")
dir="$dest$(echo "$sysconf" | sed "s|\${prefix}|$prefix|")/crmbridge"
make -s -C "$build" install-data-local DESTDIR="$dest" >/dev/null 2>&1
check "a first install puts the sample as crmbridge.conf and crmbridge.conf.sample" \
	'test -f "$dir/crmbridge.conf" && cmp -s "$dir/crmbridge.conf" "$dir/crmbridge.conf.sample"'
printf '\n[business]\nname = The admin edited this\n' >>"$dir/crmbridge.conf"
out=$(make -C "$build" install-data-local DESTDIR="$dest" 2>&1)
check "an upgrade keeps the admin's crmbridge.conf" 'grep -q "The admin edited this" "$dir/crmbridge.conf"'
check "and says so, naming the new sample" 'echo "$out" | grep -q "keeping .*crmbridge.conf (the new sample is crmbridge.conf.sample)"'
make -s -C "$build" uninstall-local DESTDIR="$dest" >/dev/null 2>&1
check "uninstall leaves an edited crmbridge.conf and removes the sample" \
	'test -f "$dir/crmbridge.conf" && ! test -e "$dir/crmbridge.conf.sample"'
rm -f "$dir/crmbridge.conf"
make -s -C "$build" install-data-local DESTDIR="$dest" >/dev/null 2>&1
make -s -C "$build" uninstall-local DESTDIR="$dest" >/dev/null 2>&1
check "an unedited crmbridge.conf is removed with the sample" '! test -e "$dir/crmbridge.conf"'
echo "1..$n"
exit $fail
