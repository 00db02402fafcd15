#!/usr/bin/env bash
# Builds linkctl_VERSION_ARCH.deb with dpkg-deb alone (no build dependency
# beyond Go and dpkg): the binary, the systemd unit, the connection hooks in
# their Debian places, the man page, bash and zsh completions, an example
# config and /var/lib/linkctl.
#
#   scripts/build-deb.sh [OUTDIR]        (default: the current directory)
#
# Installing the package enables and starts nothing. The unit is installed
# disabled and runs only once /etc/linkctl/linkctl.yaml exists
# (ConditionPathExists); the hooks do nothing until that file exists either.
# The admin copies the example, edits it, runs `linkctl check` and then
# `systemctl enable --now linkctl`.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath "${1:-.}")"

arch="${DEB_ARCH:-$(dpkg --print-architecture)}"
# Who answers for the package; a packager sets their own.
DEB_MAINTAINER="${DEB_MAINTAINER:-linkctl maintainers <maintainers@linkctl.example>}"
# Debian versions must start with a digit: 0.1.0, then the commit's date and
# hash when built from git (a tag vX.Y.Z gives X.Y.Z).
if tag=$(git describe --tags --exact-match 2>/dev/null) && [[ $tag == v[0-9]* ]]; then
	version="${tag#v}"
elif git rev-parse HEAD >/dev/null 2>&1; then
	version="0.1.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=12 HEAD)"
else
	version="0.1.0"
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
pkg="$root/pkg"

# The binary: position-independent (Debian's hardening; a static-pie Go
# binary needs no shared library), reproducible paths, the version compiled in.
mkdir -p "$pkg/usr/bin"
CGO_ENABLED=0 GOARCH="$(go env GOARCH)" go build -buildmode=pie -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$version" -o "$pkg/usr/bin/linkctl" ./cmd/linkctl

inst() { # inst MODE SRC DEST
	install -D -m "$1" "$2" "$pkg$3"
}
# The unit runs the packaged binary, and only once a config exists.
mkdir -p "$pkg/usr/lib/systemd/system"
sed -e 's|^ExecStart=/usr/local/bin/linkctl|ExecStart=/usr/bin/linkctl|' \
	-e 's|^# Install: .*|# Installed by the linkctl package, disabled: systemctl enable --now linkctl|' \
	-e '/^#          && systemctl enable --now linkctl$/d' \
	-e 's|^After=\(.*\)|After=\1\nConditionPathExists=/etc/linkctl/linkctl.yaml|' \
	scripts/systemd/linkctl.service >"$pkg/usr/lib/systemd/system/linkctl.service"
chmod 0644 "$pkg/usr/lib/systemd/system/linkctl.service"

inst 0755 scripts/ppp/ip-up.d/linkctl /etc/ppp/ip-up.d/linkctl
inst 0755 scripts/ppp/ip-down.d/linkctl /etc/ppp/ip-down.d/linkctl
inst 0755 scripts/NetworkManager/dispatcher.d/90-linkctl /etc/NetworkManager/dispatcher.d/90-linkctl
inst 0755 scripts/networkd-dispatcher/linkctl /etc/networkd-dispatcher/routable.d/50-linkctl
mkdir -p "$pkg/etc/networkd-dispatcher/off.d" "$pkg/etc/networkd-dispatcher/no-carrier.d"
ln -s ../routable.d/50-linkctl "$pkg/etc/networkd-dispatcher/off.d/50-linkctl"
ln -s ../routable.d/50-linkctl "$pkg/etc/networkd-dispatcher/no-carrier.d/50-linkctl"
inst 0755 scripts/ifupdown/linkctl /etc/network/if-up.d/linkctl
mkdir -p "$pkg/etc/network/if-down.d"
ln -s ../if-up.d/linkctl "$pkg/etc/network/if-down.d/linkctl"

# The example holds no secret, but the files beside it will: 0600, as
# `linkctl check` wants for a config that names secrets.
inst 0600 scripts/examples/ppp-postfix.yaml /etc/linkctl/linkctl.yaml.example
mkdir -p "$pkg/var/lib/linkctl"
chmod 0700 "$pkg/var/lib/linkctl"

mkdir -p "$pkg/usr/share/man/man1"
gzip -9n <docs/linkctl.1 >"$pkg/usr/share/man/man1/linkctl.1.gz"
inst 0644 docs/completions/linkctl.bash /usr/share/bash-completion/completions/linkctl
inst 0644 docs/completions/_linkctl /usr/share/zsh/vendor-completions/_linkctl

doc="$pkg/usr/share/doc/linkctl"
mkdir -p "$doc"
cat >"$doc/copyright" <<'EOF'
linkctl: mail chores for a host whose uplink comes and goes.

Copyright (C) 2026 the linkctl authors.

The authors have not yet published this program under a licence; this
package is for the project's own test machines and its users' evaluation.
EOF
{
	echo "linkctl ($version) unstable; urgency=medium"
	echo
	echo "  * Built from the linkctl source tree."
	echo
	echo " -- ${DEB_MAINTAINER}  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.gz"

mkdir -p "$pkg/DEBIAN"
(cd "$pkg" && find etc -type f | sed 's|^|/|' | sort) >"$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: linkctl
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER}
Installed-Size: $size
Section: mail
Priority: optional
Recommends: default-mta | mail-transport-agent
Suggests: ppp, network-manager, networkd-dispatcher
Description: mail chores while an intermittent uplink is up
 linkctl watches a dial-up, ISDN, LTE, satellite or VPN uplink and, while it
 is up, flushes the local outbound mail queue, asks relays with SMTP ETRN to
 deliver what they hold, fetches POP3 and IMAP mailboxes into the local MTA,
 and hangs the link up once all is done. It replaces fetchmail, mpop, getmail
 and hand-written ppp ip-up scripts.
EOF
# postinst: the state directory's mode; nothing is enabled or started.
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	chmod 0700 /var/lib/linkctl
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
exit 0
EOF
# postrm: purge removes what linkctl itself wrote (state, logs, the config
# the admin derived from the example).
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
	rm -rf /var/lib/linkctl /var/log/linkctl /run/linkctl
	rm -f /etc/linkctl/linkctl.yaml
	rmdir --ignore-fail-on-non-empty /etc/linkctl 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
EOF
# prerm: a running daemon is stopped before its binary goes away.
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop linkctl.service >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm" "$pkg/DEBIAN/prerm"

deb="$out/linkctl_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
