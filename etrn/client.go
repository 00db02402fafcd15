package etrn

import (
	"net"

	"github.com/linkctl/linkctl/internal/esmtp"
)

// The SMTP client lives in internal/esmtp, shared with ODMR's ATRN; these
// names keep the ETRN side reading as it did.
type (
	// Client is the SMTP client that sends ETRN.
	Client = esmtp.Client
	// ClientOptions configure a Client.
	ClientOptions = esmtp.ClientOptions
	// AuthOptions configure Client.Auth.
	AuthOptions = esmtp.AuthOptions
	// Reply is one SMTP reply.
	Reply = esmtp.Reply
)

// ErrBadArgument is returned by ETRN for an argument that cannot be sent.
var ErrBadArgument = esmtp.ErrBadArgument

// NewClient reads the server's greeting on conn; errors name "etrn".
func NewClient(conn net.Conn, opts ClientOptions) (*Client, error) {
	if opts.Name == "" {
		opts.Name = "etrn"
	}
	return esmtp.NewClient(conn, opts)
}
