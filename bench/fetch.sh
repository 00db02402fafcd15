#!/bin/sh
# Fetch benchmark (issues 5 and 6): linkctl against fetchmail and mpop on
# the same mailboxes in the same run, over POP3 and over IMAP (linkctl
# with and without COMPRESS=DEFLATE, fetchmail's IMAP; mpop has none).
#
#   bench/fetch.sh            all three: modem link time, loopback msgs/s, peak RSS
#   bench/fetch.sh Modem      only one (Modem, Loopback or RSS)
#   bench/fetch.sh Loopback 'linkctl|fetchmail|linkctl-maildir|mpop-maildir'
#                             only these rows (issue 19's loopback targets)
#
# Needs dovecot (imapd, pop3d), postfix, fetchmail and mpop installed (their
# system instances are not used: private instances on loopback are started),
# and root for the private Postfix. Environment: BENCH_LOOPBACK_N (messages
# for the loopback run, default 5000), BENCH_ROUNDS (runs of each quick
# loopback row, default 3: the table gives the median), BENCH_SESSIONS (linkctl's local SMTP
# sessions there, default linkctl's own), BENCH_ACK_WINDOW (linkctl's fetch.ack_window,
# default its own default), BENCH_STORE=tmp (keep the stores in
# $TMPDIR instead of a fresh journaled ext4 image, see bench/store_test.go). Takes about 30 minutes, most of it fetchmail and mpop.
set -eu
cd "$(dirname "$0")/.."
which="${1:-Modem|Loopback|RSS}"
rows="${2:+/^($2)\$}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/linkctl" ./cmd/linkctl
LINKCTL_BIN="$tmp/linkctl" exec go test -run '^$' -bench "^BenchmarkFetch($which)\$$rows" -benchtime 1x -timeout 60m ./bench/
