#!/usr/bin/env bash
# The test command of the README: installs what the tests talk to (as root,
# from Debian's packages, without starting the system's own Postfix and
# Dovecot: the tests start private instances on loopback), checks formatting
# and vet, then runs every test with the race detector.
#
# Without root, or without the packages, the tests that need them are skipped
# with a message that says so; under CI=true a missing peer fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd iproute2 fetchmail mpop procps)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing test peers: ${missing[*]}"
		# Keep the distribution's own services from starting: the tests run
		# private instances with their own config directories.
		had_policy=0
		[ -e /usr/sbin/policy-rc.d ] && had_policy=1
		[ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		[ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
	else
		echo "not installing ${missing[*]} (needs root and apt-get): tests that need them will skip"
	fi
fi
scripts/peers-extra.sh || echo "scripts/peers-extra.sh failed: Exim, Sendmail, OpenSMTPD and Courier tests will skip (fail under CI=true)"
# The machine's own Postfix and Dovecot, if they run, are left alone: the
# tests start private instances on free loopback ports with their own config
# directories, queues and mail stores, and never stop, start or reconfigure a
# system service.

unformatted=$(gofmt -l . | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...

# Every fuzz target for a short time each (FUZZTIME, FUZZ_BUDGET); a
# crasher is written under the package's testdata/fuzz and fails the run.
# Skipped when test arguments were given (a partial run).
if [ $# -eq 0 ]; then
	scripts/fuzz-all.sh
fi

# The Debian package: built, installed, verified, linted and purged. It
# installs a package on this machine, so it runs under CI (as root) or when
# asked for with LINKCTL_TEST_DEB=1.
if [ "${CI:-}" = true ] || [ "${LINKCTL_TEST_DEB:-}" = 1 ]; then
	scripts/deb-test.sh
fi
