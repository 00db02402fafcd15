#!/bin/sh
# bench/imap-wire.sh: linkctl's IMAP pull against a private Dovecot on
# loopback, the same 60-message mailbox with and without COMPRESS=DEFLATE
# (Dovecot's imap_zlib) in one run, and fetchmail's IMAP on that mailbox
# when fetchmail is installed. Prints the Go benchmark lines:
#
#   wire-B/op     octets the server sent on the wire per full pull
#   wire/payload  those octets over the sum of the message sizes (1.00 is
#                 the floor; below 1 only with compression)
#   sent-B/op     octets the client sent
#
# Usage: bench/imap-wire.sh [-benchtime Nx]   (default 5x)
# Needs dovecot (dovecot-imapd); runs as any user, touches nothing outside
# a temporary directory.
set -eu
cd "$(dirname "$0")/.."
benchtime=${2:-5x}
[ "${1:-}" = "-benchtime" ] || benchtime=5x
exec go test ./fetch/imap -run '^$' -bench 'DovecotPull' -benchtime "$benchtime" -count 1
