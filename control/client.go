package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// Do sends req to the daemon at path and reads its answer, passing each
// streamed event to onEvent (which may be nil). It returns ErrNoDaemon when
// nothing listens there. Cancelling ctx closes the connection: for `up` the
// run goes on in the daemon, only the client stops watching.
func Do(ctx context.Context, path string, req Request, onEvent func(event.Event)) (Response, error) {
	if err := checkIface(req.Iface); err != nil {
		return Response{}, err
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := d.DialContext(dctx, "unix", path)
	cancel()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, ErrNoDaemon
		}
		if errors.Is(err, os.ErrPermission) {
			return Response{}, errkind.WrapPermanent(errkind.Permission, "connect to the daemon at "+path, errors.New("permission denied: run as root or as the daemon's user"))
		}
		return Response{}, errkind.WrapTemporary(errkind.Network, "connect to the daemon at "+path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	b, _ := json.Marshal(req)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, werr := c.Write(append(b, '\n'))
	// Even when the write failed, read: a daemon that refuses a client
	// writes why and closes before reading the request.
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxResponse)
	for {
		// The server writes a keepalive while it works: a silence longer
		// than ReadTimeout means it hangs.
		c.SetReadDeadline(time.Now().Add(ReadTimeout))
		if !sc.Scan() {
			err := sc.Err()
			if ctx.Err() != nil {
				return Response{}, context.Cause(ctx)
			}
			if werr != nil {
				return Response{}, errkind.WrapTemporary(errkind.Network, "send the request to the daemon", werr)
			}
			if err == nil {
				err = errors.New("the daemon closed the connection before its reply")
			}
			return Response{}, errkind.WrapTemporary(errkind.Network, "read the daemon's reply", err)
		}
		r, err := ParseResponse(sc.Bytes())
		if err != nil {
			return Response{}, err
		}
		switch {
		case r.Done:
			return r, nil
		case r.Event != nil && onEvent != nil:
			onEvent(*r.Event)
		}
	}
}
