package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// FuzzStatus: the status-line parser and response-code classifier never
// panic, and accept only +OK/-ERR.
func FuzzStatus(f *testing.F) {
	for _, s := range []string{"+OK", "+OK 2 320", "-ERR [IN-USE] locked", "-ERR [SYS/TEMP/X] y", "-ERR [AUTH", "+ok", "", "+", "* OK", "-ERR []"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ok, text, err := parseStatus(line)
		if err != nil {
			return
		}
		ind := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		if ok != (ind == "+OK") || (!ok && ind != "-ERR") {
			t.Fatalf("%q parsed as ok=%v", line, ok)
		}
		code := responseCode(text)
		if strings.ContainsAny(code, " ]") {
			t.Fatalf("code %q from %q", code, text)
		}
		classify(&ServerError{Code: code, Text: text}, false)
		parseStat(text)
	})
}

// FuzzListing: UIDL and LIST lines are either rejected or yield a message
// number >= 1 and, for UIDL, an id RFC 1939 allows.
func FuzzListing(f *testing.F) {
	for _, s := range []string{"1 whqtswO00WBw418f9t5JxYwZ", "2 a b", "0 x", "1 120", "1 -5", "99999999999 1", "1 \x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if e, err := parseUIDLine(line); err == nil {
			if e.Num == 0 || len(e.UID) == 0 || len(e.UID) > 70 || strings.ContainsAny(e.UID, " \t\r\n") {
				t.Fatalf("accepted %q as %+v", line, e)
			}
			for i := 0; i < len(e.UID); i++ {
				if e.UID[i] < 0x21 || e.UID[i] > 0x7e {
					t.Fatalf("accepted %q with octet %#x", line, e.UID[i])
				}
			}
		}
		if e, err := parseListLine(line); err == nil && (e.Num == 0 || e.Size < 0) {
			t.Fatalf("accepted %q as %+v", line, e)
		}
	})
}

// fuzzConn is a net.Conn whose reads come from a fixed stream and whose
// writes are discarded: the server side of a session, as bytes.
type fuzzConn struct {
	r io.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSession feeds arbitrary server output to a whole session (greeting,
// CAPA, Scan, pipelined RETR, DELE, QUIT): no panic, no hang (the stream
// ends), and every message read ends cleanly or with an error.
func FuzzSession(f *testing.F) {
	f.Add([]byte("+OK\r\n+OK\r\nPIPELINING\r\n.\r\n+OK 2 20\r\n+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n1 10\r\n2 10\r\n.\r\n+OK\r\nhi\r\n..x\r\n.\r\n+OK\r\nyo\r\n.\r\n+OK\r\n+OK\r\n+OK\r\n"))
	f.Add([]byte("+OK\r\n-ERR\r\n+OK 1 5\r\n+OK\r\n1 a b\r\n.\r\n"))
	f.Add([]byte("+OK\r\n+OK\r\n.\r\n+OK 1 5\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n1 5\r\n.\r\n+OK\r\nabc"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, err := New(&fuzzConn{r: bytes.NewReader(stream)}, Options{Window: 4})
		if err != nil {
			return
		}
		if _, err := c.Capa(); err != nil {
			return
		}
		msgs, err := c.Scan()
		if err != nil {
			return
		}
		nums := make([]uint32, len(msgs))
		for i, m := range msgs {
			nums[i] = m.Num
		}
		err = c.RetrAll(nums, func(i int, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err != nil && c.Err() == nil {
			var se *ServerError
			if !errors.As(err, &se) {
				t.Fatalf("soft error that is not a -ERR: %v", err)
			}
		}
		c.DeleAll(nums)
		c.Quit()
	})
}

// FuzzDotReader: the multi-line reader gives exactly what textproto's
// DotReader gives (the reference for RFC 1939 section 3 unstuffing), for
// any input and any buffer size, and never returns more than its limit.
func FuzzDotReader(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "..x\r\n.\r\n", ".\r\n", "a\rb\r\n\r\r\n.\n", ".\rx\r\n.\r\n", "abc", "x\r\n.", strings.Repeat("y", 40) + "\r\n.\r\n"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, bufExtra uint8) {
		want, wantErr := io.ReadAll(textproto.NewReader(bufio.NewReader(bytes.NewReader(in))).DotReader())
		br := bufio.NewReaderSize(bytes.NewReader(in), 16+int(bufExtra%64))
		got, gotErr := io.ReadAll(newDotReader(br, 0))
		// Compared only on CRLF input: on bare LF textproto has quirks (an
		// empty bare-LF line does not start a new line for it).
		if bytes.Count(in, []byte("\n")) != bytes.Count(in, []byte("\r\n")) {
			io.ReadAll(newDotReader(bufio.NewReaderSize(bytes.NewReader(in), 16), 0))
			return
		}
		// After an error only the error matters: the partial data of a
		// broken transfer is never delivered.
		if (wantErr == nil) != (gotErr == nil) || wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("input %q:\n got %q, %v\nwant %q, %v", in, got, gotErr, want, wantErr)
		}
		if wantErr == nil && len(want) > 2 {
			br := bufio.NewReaderSize(bytes.NewReader(in), 16)
			got, err := io.ReadAll(newDotReader(br, int64(len(want)-1)))
			if !errors.Is(err, errTooLong) || len(got) > len(want) {
				t.Fatalf("limit %d: got %d octets, %v", len(want)-1, len(got), err)
			}
		}
	})
}
