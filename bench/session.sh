#!/bin/sh
# Whole-session benchmark (issue 19): linkctl at default settings next to a
# typical ip-up script (postqueue -f, wait for mailq, fetchmail ETRN,
# sleep 60, fetchmail, hang up) on one simulated modem line, in the same
# run. Prints link held / physical limit, bytes each way, and the
# no-early-hang-up checks (mail left at the relay, in our queue, on the
# POP3 server; inbound sessions open at the hang-up).
#
# Needs root, postfix, dovecot (pop3d) and fetchmail installed (private
# instances on loopback are started; the system's are not touched).
# Takes about 3 minutes, 100 s of it the script.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/linkctl" ./cmd/linkctl
LINKCTL_BIN="$tmp/linkctl" exec go test -run '^$' -bench '^BenchmarkSession$' -benchtime 1x -timeout 20m ./bench/
