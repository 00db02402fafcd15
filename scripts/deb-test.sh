#!/usr/bin/env bash
# Builds the Debian package, installs it with apt-get as a user would, checks
# it (--version, the unit with systemd-analyze verify, `linkctl check` on the
# example config, lintian with no errors), then purges it and checks that
# nothing is left behind. Needs root and apt-get; scripts/test.sh runs it
# under CI=true. It refuses to touch a host where linkctl is already
# installed as a package.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "deb-test: skipped (needs root and apt-get)"
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi
if dpkg-query -W -f='${Status}' linkctl 2>/dev/null | grep -q "ok installed"; then
	echo "deb-test: linkctl is installed as a package on this host; not replacing it" >&2
	exit 1
fi
for p in lintian systemd; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
	fi
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
deb="$(scripts/build-deb.sh "$out")"
echo "deb-test: built $(basename "$deb")"
fail() {
	echo "deb-test: $*" >&2
	exit 1
}

# apt-get wants a path with a slash to take a file rather than a name.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
linkctl --version | grep -q '^linkctl 0\.' || fail "linkctl --version: $(linkctl --version 2>&1)"
[ "$(command -v linkctl)" = /usr/bin/linkctl ] || fail "linkctl is not /usr/bin/linkctl"
systemd-analyze verify /usr/lib/systemd/system/linkctl.service || fail "systemd-analyze verify failed"
systemctl is-enabled linkctl.service 2>/dev/null | grep -qx enabled && fail "the package enabled the unit"
[ "$(stat -c %a /etc/linkctl/linkctl.yaml.example)" = 600 ] || fail "example config is not mode 0600"
[ -d /var/lib/linkctl ] || fail "/var/lib/linkctl missing"
man -w linkctl >/dev/null 2>&1 || [ -e /usr/share/man/man1/linkctl.1.gz ] || fail "man page missing"
# The example names a password file the admin has not written yet; check
# says so and nothing else.
cfg="$out/linkctl.yaml"
cp /etc/linkctl/linkctl.yaml.example "$cfg"
printf 'secret\n' >"$out/isp.pass"
chmod 600 "$cfg" "$out/isp.pass"
sed -i "s|/etc/linkctl/isp.pass|$out/isp.pass|" "$cfg"
linkctl check --offline -c "$cfg" >/dev/null || fail "linkctl check --offline on the example config failed"

# No hook runs linkctl before a config exists.
PPP_IFACE=ppp9 LINKCTL_BIN=/bin/false /etc/ppp/ip-up.d/linkctl || fail "ppp hook failed without a config"

lint="$(lintian "$deb" 2>&1 || true)"
echo "$lint" | sed 's/^/deb-test: lintian: /'
if echo "$lint" | grep -q '^E: '; then
	fail "lintian reported errors"
fi

DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq linkctl >/dev/null
for p in /usr/bin/linkctl /etc/linkctl /var/lib/linkctl /usr/lib/systemd/system/linkctl.service \
	/etc/ppp/ip-up.d/linkctl /etc/network/if-down.d/linkctl /usr/share/doc/linkctl; do
	[ -e "$p" ] || [ -L "$p" ] && fail "$p left behind after purge"
done
dpkg-query -W linkctl >/dev/null 2>&1 && fail "dpkg still knows linkctl after purge"
echo "deb-test: ok (installed, verified, linted, purged without leftovers)"
