#!/bin/sh
# bench/imap-wire.sh: linkctl's IMAP pull against a private Dovecot on
# loopback, the same mailbox with and without COMPRESS=DEFLATE (Dovecot's
# imap_zlib) and with fetchmail's IMAP (when installed), in one run.
#
#   bench/imap-wire.sh          loopback: 60 messages, 5 pulls each
#   bench/imap-wire.sh modem    over internal/linksim at 56k/33.6k, 75 ms
#                               each way: 12 messages, one pull each (~80 s)
#
# Metrics of the Go benchmark lines:
#   wire-B/op     octets the server sent on the wire per pull
#   wire/payload  those over the sum of the message sizes (1.00 = floor)
#   busy-s/op     (modem) seconds the line was in use per pull
#   busy/floor    (modem) that over the uncompressed payload's line time
#                 at 56 kbit/s: 1.00 = no protocol overhead or round trips
# Needs dovecot (dovecot-imapd); touches nothing outside temporary dirs.
set -eu
cd "$(dirname "$0")/.."
case "${1:-loopback}" in
modem) exec go test ./fetch/imap -run '^$' -bench 'DovecotModem' -benchtime 1x -count 1 -timeout 20m ;;
*) exec go test ./fetch/imap -run '^$' -bench 'DovecotPull' -benchtime 5x -count 1 ;;
esac
