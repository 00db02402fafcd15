// Package scripts holds no Go code: it is the home of the files that tie
// linkctl into a system, and of the tests that run them.
//
//   - ppp/ip-up.d/linkctl, ppp/ip-down.d/linkctl: pppd's hooks;
//   - NetworkManager/dispatcher.d/90-linkctl: NetworkManager's dispatcher;
//   - networkd-dispatcher/linkctl: systemd-networkd's state scripts;
//   - ifupdown/linkctl: /etc/network/if-up.d and if-down.d;
//   - systemd/linkctl.service: the hardened unit for `linkctl daemon`;
//   - examples/*.yaml: configs for four common setups;
//   - test.sh (the test command of the README and CI: installs the test
//     peers, gofmt, vet, go test -race, then fuzz-all.sh and, under CI,
//     deb-test.sh), peers-extra.sh (unpacks Exim, Sendmail, OpenSMTPD and
//     Courier into a private root for internal/testpeer), fuzz-all.sh
//     (every fuzz target for a short while), flaky.sh (the suite N times,
//     listing every test that failed once);
//   - build-deb.sh (the Debian package, with dpkg-deb alone) and
//     deb-test.sh (installs it, checks it with lintian, purges it).
//
// Each hook is a small POSIX sh script that turns its caller's way of
// naming the interface and the event into `linkctl up --no-wait IFACE`
// (started in a session of its own, so the caller never waits for a run)
// or `linkctl down IFACE`. The tests run every script with the arguments
// and environment its caller provides and a fake linkctl first in PATH
// that records its argv; the example configs are loaded with config.Parse.
package scripts
