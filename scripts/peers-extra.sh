#!/usr/bin/env bash
# Prepares the extra test peers of the integration tests: Exim 4, Sendmail,
# OpenSMTPD and Courier IMAP/POP3. Installing any of them with the package
# manager would remove the machine's Postfix or Dovecot, so this script only
# downloads the Debian packages (`apt-get download`) and unpacks each set with
# `dpkg -x` into a private root under the cache directory:
#
#   /var/cache/linkctl-test/debroot/NAME-VERSION/   (one per server)
#
# internal/testpeer finds a root by NAME (the newest VERSION) and runs the
# binaries from it with LD_LIBRARY_PATH and private configs, spools and
# ports. A root that is already there is kept: CI unpacks once per cache.
# The script never installs, starts or configures anything on the machine.
#
# Usage: scripts/peers-extra.sh [exim|sendmail|opensmtpd|courier ...]
# Without root or apt-get it prints why and exits 0: the tests then skip
# (or fail under CI=true, naming this script).
set -euo pipefail

cache=${LINKCTL_DEBROOT:-/var/cache/linkctl-test/debroot}

declare -A sets=(
	[exim]="exim4-daemon-light exim4-base exim4-config"
	[sendmail]="sendmail-bin sendmail-base sendmail-cf m4 liblockfile1"
	[opensmtpd]="opensmtpd"
	[courier]="courier-imap courier-pop courier-base courier-authdaemon courier-authlib courier-authlib-userdb libcourier-unicode4 libgamin0 libpcre3 libltdl7"
)
# The package whose version names the root.
declare -A main=([exim]=exim4-daemon-light [sendmail]=sendmail-bin [opensmtpd]=opensmtpd [courier]=courier-imap)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
	echo "peers-extra: needs root, apt-get and dpkg: not preparing $cache (tests that need these peers skip)"
	exit 0
fi

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(exim sendmail opensmtpd courier)
mkdir -p "$cache"
updated=0
for name in "${names[@]}"; do
	pkgs=${sets[$name]:-}
	if [ -z "$pkgs" ]; then
		echo "peers-extra: unknown peer $name" >&2
		exit 2
	fi
	ver=$(apt-cache policy "${main[$name]}" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		if [ $updated = 0 ]; then apt-get update -qq || true; updated=1; fi
		ver=$(apt-cache policy "${main[$name]}" 2>/dev/null | awk '/Candidate:/ {print $2}')
	fi
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		echo "peers-extra: no package ${main[$name]} available: $name tests will skip"
		continue
	fi
	ver=${ver//[:~+]/_}
	root="$cache/$name-$ver"
	if [ -e "$root/.complete" ]; then
		continue
	fi
	tmp=$(mktemp -d "$cache/.dl-$name.XXXXXX")
	echo "peers-extra: unpacking $name ($ver) into $root"
	# apt-get download writes into the current directory and runs as the
	# _apt user where it can: give it a directory it can write.
	chmod 0777 "$tmp"
	if ! (cd "$tmp" && apt-get download -qq $pkgs >/dev/null 2>"$tmp/err"); then
		cat "$tmp/err" >&2
		rm -rf "$tmp"
		echo "peers-extra: cannot download $name: its tests will skip"
		continue
	fi
	mkdir -p "$tmp/root"
	for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
	touch "$tmp/root/.complete"
	rm -rf "$root"
	mv "$tmp/root" "$root"
	rm -rf "$tmp"
done
