// Package control is the daemon's control socket: `linkctl up`, `down`,
// `status`, `quit` and `dial` talk to a running `linkctl daemon` through it.
//
// The flow: the daemon calls [Listen] (a Unix stream socket, mode 0600,
// a stale socket from a crashed daemon replaced) and [Server.Serve] with a
// [Handler]. A client ([Do]) connects and writes one [Request] as a JSON
// line. The server first checks who is calling with SO_PEERCRED (unix(7)):
// only root and the daemon's own uid may control it, whatever the file mode
// says, since the mode alone is easy to loosen by mistake. The handler then
// runs; while it does, the server streams progress as one [Response] line
// per event.Event, a keepalive line every [Keepalive] when nothing else
// happens (so the client can put a deadline on every read), and finally one
// Response with Done set: the exit status, an error text and, for status,
// the daemon's state as JSON.
//
// A slow or vanished client never slows the pipeline: events go through a
// bounded queue, and when it is full they are dropped for that client (the
// final reply still arrives). Nor does one hold up the daemon's exit: when
// Serve's context ends, connections still open a second later are closed.
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// Ops a client may ask for.
const (
	OpUp     = "up"     // run the pipeline now; Wait: stream until the run ends
	OpDown   = "down"   // the link is going away: cancel the run in flight
	OpStatus = "status" // the daemon's state
	OpQuit   = "quit"   // stop the daemon (as SIGTERM)
	OpDial   = "dial"   // dial now (dial on demand); the reply says whether the link came up
)

// Request is what a client asks, one JSON line.
type Request struct {
	Op    string `json:"op"`
	Iface string `json:"iface,omitempty"`
	Wait  bool   `json:"wait,omitempty"`
}

// Response is one line from the server: an event, a keepalive, or the final
// reply (Done).
type Response struct {
	Event     *event.Event    `json:"event,omitempty"`
	Keepalive bool            `json:"keepalive,omitempty"`
	Done      bool            `json:"done,omitempty"`
	Exit      int             `json:"exit,omitempty"`
	Error     string          `json:"error,omitempty"`
	Text      string          `json:"text,omitempty"`   // a line for the user ("run 7 started")
	Status    json.RawMessage `json:"status,omitempty"` // for OpStatus
	// Stopping says the daemon refused because it is on its way out:
	// `linkctl up` then waits for it to go and runs without it.
	Stopping bool `json:"stopping,omitempty"`
}

// Reply is the handler's answer: the final Response without the framing.
type Reply struct {
	Exit   int
	Error  string
	Text   string
	Status any // marshalled into Response.Status
	// Stopping: see Response.Stopping.
	Stopping bool
}

// MaxLine bounds a request or response line. Status replies carry the last
// report of every stage, so responses get more room than requests.
const (
	MaxRequest  = 4 << 10
	MaxResponse = 1 << 20
)

// Keepalive is how often the server writes a keepalive line while a handler
// runs; clients time a read out after ReadTimeout.
var (
	Keepalive   = 20 * time.Second
	ReadTimeout = 90 * time.Second
)

// ParseRequest decodes and checks one request line.
func ParseRequest(line []byte) (Request, error) {
	var req Request
	if len(line) > MaxRequest {
		return req, errkind.Permanent(errkind.Protocol, "control request", "longer than %d bytes", MaxRequest)
	}
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, errkind.WrapPermanent(errkind.Protocol, "control request", err)
	}
	if dec.More() {
		return Request{}, errkind.Permanent(errkind.Protocol, "control request", "trailing data after the request")
	}
	switch req.Op {
	case OpUp, OpDown, OpStatus, OpQuit, OpDial:
	default:
		return Request{}, errkind.Permanent(errkind.Usage, "control request", "unknown op %q (want up, down, status, quit or dial)", req.Op)
	}
	if err := checkIface(req.Iface); err != nil {
		return Request{}, err
	}
	return req, nil
}

// checkIface accepts what the kernel accepts as an interface name
// (IFNAMSIZ: at most 15 bytes, no '/', no whitespace), so that nothing
// strange reaches logs or LINKCTL_IFACE.
func checkIface(s string) error {
	if len(s) > 15 {
		return errkind.Permanent(errkind.Usage, "control request", "interface name %.20q too long (15 bytes at most)", s)
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == '/' || c == ':' || c >= 0x7f {
			return errkind.Permanent(errkind.Usage, "control request", "interface name %q has a character not allowed in one", s)
		}
	}
	return nil
}

// ParseResponse decodes one response line.
func ParseResponse(line []byte) (Response, error) {
	var r Response
	if len(line) > MaxResponse {
		return r, errkind.Permanent(errkind.Protocol, "control response", "longer than %d bytes", MaxResponse)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return Response{}, errkind.WrapPermanent(errkind.Protocol, "control response", err)
	}
	if r.Exit < 0 || r.Exit > 255 {
		return Response{}, errkind.Permanent(errkind.Protocol, "control response", "exit status %d out of range", r.Exit)
	}
	return r, nil
}

// ErrNoDaemon says no daemon listens on the socket: `linkctl up` then runs
// the pipeline itself.
var ErrNoDaemon = errors.New("no linkctl daemon is running")

// refused is the reply for a peer that may not control the daemon.
func refused(uid uint32, own int) Reply {
	return Reply{Exit: int(errkind.Permission), Error: fmt.Sprintf(
		"permission denied: uid %d may not control this daemon (only root and uid %d may)", uid, own)}
}
