#!/bin/sh
# netlink-wakeups.sh BIN [SECONDS] [DAEMONS] [BIN2]: idle wake-ups of `linkctl daemon`.
#
# Starts DAEMONS (default 1) copies of BIN as `linkctl daemon` side by side in
# a network namespace of its own (a veth pair, up0 192.0.2.1/24 up, watched
# by every daemon; pipeline `exec: [true]`, no interval), waits 5 s for the
# start-up edge and run to pass, then counts each daemon's context switches
# over SECONDS (default 60) from /proc/PID/task/*/status, summed over its
# threads, and the CPU time it used (utime + stime). Prints one line per
# daemon: voluntary and involuntary switches per minute, CPU seconds, and
# the lines it logged in the window. With BIN2, every daemon after the
# first runs BIN2 (an old daemon next to a new one). Needs root; touches
# nothing outside the namespace and a temporary directory.
set -eu
BIN=$(readlink -f "$1")
SECS=${2:-60}
N=${3:-1}
BIN2=$(readlink -f "${4:-$1}")
NS=linkctl-wake-$$
DIR=$(mktemp -d)
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add up0 type veth peer name peer0
ip -n "$NS" addr add 192.0.2.1/24 dev up0
ip -n "$NS" addr add 192.0.2.2/24 dev peer0
ip -n "$NS" link set peer0 up
ip -n "$NS" link set up0 up

sum() { # sum a field over every thread of pid $1
	cat /proc/"$1"/task/*/status 2>/dev/null | awk -v f="$2:" '$1 == f { s += $2 } END { print s + 0 }'
}
cpu() { # utime + stime of pid $1, in clock ticks
	awk '{ print $14 + $15 }' /proc/"$1"/stat
}
i=0
while [ "$i" -lt "$N" ]; do
	i=$((i + 1))
	d=$DIR/d$i
	mkdir -p "$d/state"
	cat >"$d/linkctl.yaml" <<YAML
state_dir: $d/state
control_socket: $d/state/control.sock
metrics_file: $d/state/linkctl.prom
link: {watch: [up0], settle: 1s}
pipeline:
  - exec: [true]
YAML
	b=$BIN
	[ "$i" -gt 1 ] && b=$BIN2
	ip netns exec "$NS" "$b" -c "$d/linkctl.yaml" daemon >"$d/log" 2>&1 &
	PIDS="$PIDS $!"
done
sleep 5
set -- $PIDS
for p in "$@"; do
	eval "v0_$p=$(sum "$p" voluntary_ctxt_switches) n0_$p=$(sum "$p" nonvoluntary_ctxt_switches) c0_$p=$(cpu "$p")"
done
i=0
for p in "$@"; do i=$((i + 1)); eval "l0_$p=$(wc -l <"$DIR/d$i/log")"; done
sleep "$SECS"
i=0
for p in "$@"; do
	i=$((i + 1))
	v1=$(sum "$p" voluntary_ctxt_switches)
	n1=$(sum "$p" nonvoluntary_ctxt_switches)
	l1=$(wc -l <"$DIR/d$i/log")
	c1=$(cpu "$p")
	eval "v0=\$v0_$p n0=\$n0_$p l0=\$l0_$p c0=\$c0_$p"
	echo "daemon $i of $N: $(((v1 - v0) * 60 / SECS)) voluntary, $(((n1 - n0) * 60 / SECS)) involuntary context switches a minute; $(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }') s CPU and $((l1 - l0)) log lines in ${SECS}s"
done
i=0
for p in "$@"; do i=$((i + 1)); echo "--- daemon $i log (last 3 lines)"; tail -n 3 "$DIR/d$i/log"; done
