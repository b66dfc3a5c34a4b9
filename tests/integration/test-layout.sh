#!/bin/sh
# The layout docs/ARCHITECTURE.md describes, checked: each folder includes only the folders it may call
# (the link order daemon admin conversation twilio stripe odoo classifier redis common, each calling only
# those to its right), and no production source file is longer than 1,200 lines.
top=${TOP_SRCDIR:-$(dirname "$0")/../..}
cd "$top" || exit 1

allowed() {
	case $1 in
	daemon | ctl) echo "daemon admin conversation twilio stripe odoo classifier redis common" ;;
	admin) echo "admin conversation twilio stripe odoo classifier redis common" ;;
	conversation) echo "conversation twilio stripe odoo classifier redis common" ;;
	twilio) echo "twilio redis common" ;;
	stripe | odoo | classifier) echo "$1 common" ;;
	common) echo "common" ;;
	esac
}

n=0
fail=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	fail=1
	echo "not ok $n - $1"
}

for dir in daemon admin conversation twilio stripe odoo classifier common ctl; do
	bad=
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -f "$f" ] || continue
		for inc in $(sed -n 's/^#include "\([a-z]*\)\/.*"/\1/p' "$f" | sort -u); do
			case " $(allowed "$dir") " in
			*" $inc "*) ;;
			*) bad="$bad $f→$inc/" ;;
			esac
		done
	done
	if [ -z "$bad" ]; then
		ok "$dir/ includes only: $(allowed "$dir")"
	else
		not_ok "$dir/ includes only: $(allowed "$dir") (but:$bad)"
	fi
done

long=
for f in daemon/*.[ch] admin/*.[ch] conversation/*.[ch] twilio/*.[ch] stripe/*.[ch] odoo/*.[ch] classifier/*.[ch] \
	common/*.[ch] ctl/*.[ch]; do
	[ -f "$f" ] || continue
	case $f in classifier/lexicon-data.c) continue ;; esac # generated from lexicon.json (a dist tarball has it)
	l=$(wc -l <"$f")
	[ "$l" -gt 1200 ] && long="$long $f ($l)"
done
if [ -z "$long" ]; then
	ok "no production file is over 1,200 lines"
else
	not_ok "no production file is over 1,200 lines (but:$long)"
fi
echo "1..$n"
exit $fail
