#!/usr/bin/env bash
# fuzz-all.sh runs every fuzz target of the module for a short time each:
# the CI half of issue 15 item 9 (every parser fuzzed on every run, any
# crasher kept in testdata).
#
# It finds the targets with `go test -list '^Fuzz'` in each package that has
# a Fuzz function, then runs each one alone with
# `go test -run '^$' -fuzz '^Name$' -fuzztime T`. T is FUZZTIME when set
# (e.g. FUZZTIME=30s for a longer local run), otherwise FUZZ_BUDGET seconds
# (default 60) shared among the targets, at least 2 s each, so that the
# whole run, builds included, stays under three minutes on two cores (30
# targets: about two minutes). Below 2 s, go test's fuzzer sometimes fails
# a target with a bare "context deadline exceeded" and no input: such a
# failure (nothing written to testdata) is run once more before it counts.
#
# A failing target leaves its input under the package's testdata/fuzz/;
# the script prints that path and the go test output, goes on with the
# other targets, and exits 1 at the end. Commit the input with the fix:
# `go test` then replays it on every run.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
budget=${FUZZ_BUDGET:-60}

targets=()
for dir in $(go list -f '{{.Dir}}' ./...); do
	# Only packages with a fuzz function: go test -list builds the test
	# binary, which is not worth doing for the others.
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	pkg=$(go list "$dir") || exit 2
	names=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz') || {
		echo "fuzz-all: cannot list the fuzz targets of $pkg" >&2
		exit 2
	}
	for name in $names; do
		targets+=("$pkg $dir $name")
	done
done

n=${#targets[@]}
if [ "$n" -eq 0 ]; then
	echo "fuzz-all: no fuzz targets found" >&2
	exit 2
fi
if [ -n "${FUZZTIME:-}" ]; then
	fuzztime=$FUZZTIME
else
	per=$((budget / n))
	[ "$per" -lt 2 ] && per=2
	fuzztime=${per}s
fi
echo "fuzz-all: $n targets, $fuzztime each"

start=$(date +%s)
failed=0
for t in "${targets[@]}"; do
	read -r pkg dir name <<<"$t"
	ok=0
	for attempt in 1 2; do
		out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1) && { ok=1; break; }
		# A real failure writes its input; only a bare one is retried.
		echo "$out" | grep -q 'Failing input written' && break
		[ "$attempt" -eq 1 ] && echo "again $pkg $name (failed without an input: $(echo "$out" | grep -m1 -v '^fuzz:' | sed 's/^ *//'))"
	done
	if [ "$ok" -eq 1 ]; then
		echo "ok   $pkg $name"
		continue
	fi
	failed=$((failed + 1))
	echo "FAIL $pkg $name"
	echo "$out" | sed 's/^/    /'
	# "Failing input written to testdata/fuzz/FuzzX/abc..." is relative
	# to the package directory.
	for f in $(echo "$out" | sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p'); do
		echo "crasher: ${dir#"$PWD"/}/$f"
	done
done
echo "fuzz-all: $n targets in $(($(date +%s) - start)) s, $failed failed"
[ "$failed" -eq 0 ]
