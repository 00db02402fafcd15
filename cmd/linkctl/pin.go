package main

import (
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/tlsprobe"
)

func init() {
	register(&command{
		Name:    "pin",
		Args:    "[flags] HOST[:PORT]",
		Summary: "print the tls_pin of a server's current certificate, and whether it verifies",
		Help: `Connects to HOST (TLS at once, or STARTTLS/STLS as the protocol does it), takes
the certificate it presents, and prints its pin (the SHA-256 of its public key, as
curl's --pinnedpubkey writes it), subject, issuer, validity and names, whether
the chain verifies, and a tls_pin: line to paste into the server's entry. No
login is attempted and nothing is sent after the handshake.

The certificate is shown even when it does not verify. Check the pin through a
connection you trust (another network, the server's console) before pasting it:
a pin taken over a hijacked link pins the hijacker.

--proto and --tls default from the port: 995 pop3 implicit, 110 pop3 starttls,
993 imap implicit, 143 imap starttls, 465 smtp implicit, 25 and 587 smtp
starttls. Without a port, --proto picks its usual one. --ca-file verifies
against that PEM bundle instead of the system roots, as ca_file does.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			proto := fs.String("proto", "", "pop3, imap, smtp or etrn (default from the port)")
			mode := fs.String("tls", "", "implicit or starttls (default from the port)")
			caFile := fs.String("ca-file", "", "verify against this PEM `file` instead of the system roots")
			name := fs.String("servername", "", "the `name` to ask for (SNI) and verify (default the host)")
			timeout := fs.Duration("timeout", 30*time.Second, "per read/write and connect timeout")
			return func(a *App, args []string) error {
				if len(args) != 1 {
					return errkind.Permanent(errkind.Usage, "", "need one HOST[:PORT] (linkctl pin --help)")
				}
				o, err := pinOptions(args[0], *proto, *mode)
				if err != nil {
					return err
				}
				o.ServerName, o.Timeout = *name, *timeout
				if *caFile != "" {
					data, err := netconn.LoadCAFile(*caFile)
					if err != nil {
						return errkind.WrapPermanent(errkind.Usage, "--ca-file", err)
					}
					o.Roots, _ = netconn.ParseCA(data)
				}
				r, err := tlsprobe.Probe(a.Ctx, o)
				if err != nil {
					return err
				}
				a.printPin(o, r, *caFile)
				return nil
			}
		},
	})
}

// portDefaults maps well-known ports to the protocol and TLS mode they
// carry (RFC 8314 section 7 for the implicit-TLS ones).
var portDefaults = map[int]struct{ proto, tls string }{
	995: {"pop3", "implicit"}, 110: {"pop3", "starttls"},
	993: {"imap", "implicit"}, 143: {"imap", "starttls"},
	465: {"smtp", "implicit"}, 25: {"smtp", "starttls"}, 587: {"smtp", "starttls"},
	366: {"smtp", "starttls"}, // ODMR (RFC 2645) speaks SMTP
}

// pinOptions resolves HOST[:PORT], --proto and --tls into probe options.
func pinOptions(server, proto, mode string) (tlsprobe.Options, error) {
	var o tlsprobe.Options
	host, portStr, err := net.SplitHostPort(server)
	port := 0
	if err != nil {
		host = strings.Trim(server, "[]")
	} else if port, err = strconv.Atoi(portStr); err != nil || port < 1 || port > 65535 {
		return o, errkind.Permanent(errkind.Usage, "", "invalid port in %q", server)
	}
	def, known := portDefaults[port]
	switch proto = strings.ToLower(proto); proto {
	case "":
		if !known {
			return o, errkind.Permanent(errkind.Usage, "", "port %d: say which protocol with --proto pop3|imap|smtp", port)
		}
		proto = def.proto
	case "pop3", "imap", "smtp", "etrn", "odmr":
	default:
		return o, errkind.Permanent(errkind.Usage, "", "--proto %q: expected pop3, imap, smtp or etrn", proto)
	}
	if proto == "odmr" {
		proto = "smtp"
	}
	var tlsMode netconn.TLSMode
	switch {
	case mode != "":
		m, err := netconn.ParseTLSMode(mode)
		if err != nil || m == netconn.TLSNone {
			return o, errkind.Permanent(errkind.Usage, "", "--tls %q: expected implicit or starttls", mode)
		}
		tlsMode = m
	case known && def.proto == proto:
		tlsMode = netconn.TLSMode(def.tls)
	case proto == "smtp" || proto == "etrn":
		tlsMode = netconn.TLSStartTLS
	default:
		tlsMode = netconn.TLSImplicit // pop3s, imaps: the ports RFC 8314 prefers
	}
	if port == 0 {
		p := proto
		if p == "etrn" {
			p = "smtp"
		}
		port = config.DefaultPort(p, tlsMode)
	}
	o.Addr, o.Proto, o.TLS = net.JoinHostPort(host, strconv.Itoa(port)), proto, tlsMode
	return o, nil
}

func (a *App) printPin(o tlsprobe.Options, r *tlsprobe.Result, caFile string) {
	leaf := r.Chain[0]
	w := a.Stdout
	fmt.Fprintf(w, "server    %s (%s, tls: %s, %s)\n", r.Addr, o.Proto, o.TLS, tls13(r.Version))
	fmt.Fprintf(w, "pin       %s\n", r.Pin)
	fmt.Fprintf(w, "subject   %s\n", leaf.Subject)
	fmt.Fprintf(w, "issuer    %s\n", leaf.Issuer)
	days := int(time.Until(leaf.NotAfter).Hours() / 24)
	state := fmt.Sprintf("expires in %d days", days)
	if days < 2 {
		state = "expires in " + time.Until(leaf.NotAfter).Round(time.Minute).String()
	}
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		state = "EXPIRED"
	case now.Before(leaf.NotBefore):
		state = "NOT YET VALID"
	}
	fmt.Fprintf(w, "valid     %s to %s (%s)\n", leaf.NotBefore.UTC().Format("2006-01-02"), leaf.NotAfter.UTC().Format("2006-01-02"), state)
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) > 0 {
		fmt.Fprintf(w, "names     %s\n", strings.Join(names, ", "))
	}
	roots := "system roots"
	if caFile != "" {
		roots = caFile
	}
	if r.VerifyErr == nil {
		fmt.Fprintf(w, "verified  yes (chain and name, against %s; %d certificates sent)\n", roots, len(r.Chain))
	} else {
		fmt.Fprintf(w, "verified  NO: %v (against %s)\n", r.VerifyErr, roots)
		fmt.Fprintf(w, "          with this pin alone add tls_verify: pin-only, or give the issuing CA\n")
		fmt.Fprintf(w, "          (or this self-signed certificate) as ca_file\n")
	}
	fmt.Fprintf(w, "\ntls_pin: %s\n", r.Pin)
}

func tls13(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}
