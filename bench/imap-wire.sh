#!/bin/sh
# bench/imap-wire.sh: linkctl's IMAP client alone against a private Dovecot
# on loopback: the octets on the wire for the same mailbox (60 messages,
# some with incompressible attachments) with and without COMPRESS=DEFLATE
# (Dovecot's imap_zlib), and fetchmail's IMAP when installed, 5 pulls each.
#
# Metrics of the Go benchmark lines:
#   wire-B/op     octets the server sent on the wire per pull
#   wire/payload  those over the sum of the message sizes (1.00 = floor)
#
# The dial-up and loopback comparisons with fetchmail (issue 6) are in
# bench/fetch.sh, on the same mailboxes as POP3's.
# Needs dovecot (dovecot-imapd); touches nothing outside temporary dirs.
set -eu
cd "$(dirname "$0")/.."
exec go test ./fetch/imap -run '^$' -bench 'DovecotPull' -benchtime 5x -count 1
