package assemble

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/netconn"
)

// tlsConfig is the TLS client config for a server at addr with the
// config's tls_pin, ca_file and tls_verify: nil (system roots, the
// dialers' default) when none is set. The CA bundle is the one validation
// read and checked, so what `linkctl check` accepted is what is used.
func tlsConfig(t config.TLSTrust, addr string) *tls.Config {
	if t.IsZero() {
		return nil
	}
	tr := netconn.Trust{Pins: t.Pins, CAFile: t.CAFile, PinOnly: t.PinOnly}
	if len(t.CA) > 0 {
		pool, err := netconn.ParseCA(t.CA)
		if err != nil {
			// Validation parsed these bytes already; should that ever
			// differ, an empty pool refuses every server rather than
			// falling back to the system roots.
			pool = x509.NewCertPool()
		}
		tr.Roots = pool
	}
	return tr.Config(addr)
}
