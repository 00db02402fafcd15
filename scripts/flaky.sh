#!/usr/bin/env bash
# flaky.sh runs the test suite several times and reports every test that
# failed at least once, with how often, and the time of each pass.
#
#   scripts/flaky.sh [-n N] [-race] [-o DIR] [PACKAGE...] [-- GO-TEST-FLAGS...]
#
#   -n N     passes (default 10)
#   -race    run with the race detector
#   -o DIR   keep each pass's `go test -json` output in DIR (default: a new
#            directory under /tmp, printed at the end)
#   PACKAGE  what to test (default ./...)
#
# Each pass is `go test -json -count=1 [-race] PACKAGES`: -count=1 so that
# no result comes from the cache. A test counts as failed in a pass when go
# test reports "fail" for it; a package that fails without a test to blame
# (a panic, a timeout, a build error) is reported as the package. The exit
# status is 0 when every pass passed, 1 otherwise.
#
# Run as root with Postfix and Dovecot installed (scripts/test.sh installs
# them) so that the tests needing them run instead of skipping.
set -uo pipefail
cd "$(dirname "$0")/.."

passes=10
race=()
out=""
pkgs=()
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	-n) passes=$2; shift 2 ;;
	-race) race=(-race); shift ;;
	-o) out=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	-*) echo "flaky.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
	*) pkgs+=("$1"); shift ;;
	esac
done
case $passes in '' | *[!0-9]* | 0) echo "flaky.sh: -n wants a positive number" >&2; exit 2 ;; esac
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
if [ -z "$out" ]; then
	out=$(mktemp -d /tmp/flaky.XXXXXX)
else
	mkdir -p "$out"
fi

# failures FILE prints one line per failure in a pass: "PACKAGE TEST", or
# "PACKAGE (package)" when no test of the package is to blame. go test
# -json writes one event per line with its fields in a fixed order.
failures() {
	sed -n \
		-e '/"Action":"fail"/{
			/"Test":/{s/.*"Package":"\([^"]*\)".*"Test":"\([^"]*\)".*/\1 \2/p;d}
			s/.*"Package":"\([^"]*\)".*/\1 (package)/p
		}' \
		-e '/"Action":"build-fail"/s/.*"ImportPath":"\([^"]*\)".*/\1 (build failed)/p' \
		"$1" | sort -u |
		awk '{ line[NR] = $0; pkg[NR] = $1 } $2 != "(package)" { blamed[$1] = 1 }
			END { for (i = 1; i <= NR; i++) if (!(line[i] ~ / \(package\)$/ && blamed[pkg[i]])) print line[i] }'
}

declare -A count=()
declare -a times=()
failed_passes=0
for i in $(seq 1 "$passes"); do
	start=$(date +%s.%N)
	go test -json -count=1 "${race[@]}" "${extra[@]}" "${pkgs[@]}" >"$out/pass-$i.json" 2>"$out/pass-$i.stderr"
	rc=$?
	end=$(date +%s.%N)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	times+=("$secs")
	mapfile -t failed < <(failures "$out/pass-$i.json")
	if [ "$rc" -ne 0 ] && [ ${#failed[@]} -eq 0 ]; then
		failed=("(go test exited $rc: see $out/pass-$i.stderr)")
	fi
	for f in "${failed[@]}"; do
		count[$f]=$((${count[$f]:-0} + 1))
	done
	if [ ${#failed[@]} -eq 0 ]; then
		printf 'pass %d/%d: ok in %ss\n' "$i" "$passes" "$secs"
	else
		failed_passes=$((failed_passes + 1))
		printf 'pass %d/%d: FAIL in %ss (%d failed)\n' "$i" "$passes" "$secs" "${#failed[@]}"
	fi
done

echo
echo "times (s): ${times[*]}"
if [ ${#count[@]} -eq 0 ]; then
	echo "no test failed in $passes passes"
	echo "go test -json output: $out"
	exit 0
fi
echo "failed at least once ($failed_passes of $passes passes had failures):"
for f in "${!count[@]}"; do
	printf '  %d/%d  %s\n' "${count[$f]}" "$passes" "$f"
done | sort -k3
echo "go test -json output (the failing tests' logs are in it): $out"
exit 1
