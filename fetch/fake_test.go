package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
)

// fakeServer is a POP3-like maildrop in memory: deletions take effect only
// when a session closes with commit (RFC 1939 section 6).
type fakeServer struct {
	mu     sync.Mutex
	key    string
	msgs   []fakeMsg
	nextID int

	opened    int
	retrieved int // messages whose bytes were handed out completely

	// fault injection
	openErr      error
	openHook     func(ctx context.Context) error
	cutAfter     int  // >0: the Nth RETR of a session (1-based) breaks mid-message
	cutQuit      bool // Close(commit) fails without committing
	deleteHook   func([]Message)
	retrieveHook func(Message)
}

type fakeMsg struct {
	uid  string
	body []byte
}

func newFakeServer(key string) *fakeServer { return &fakeServer{key: key} }

func (s *fakeServer) add(body string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	uid := fmt.Sprintf("uid-%04d", s.nextID)
	s.msgs = append(s.msgs, fakeMsg{uid: uid, body: []byte(body)})
	return uid
}

func (s *fakeServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *fakeServer) open(ctx context.Context) (Mailbox, error) {
	if s.openHook != nil {
		if err := s.openHook(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	s.opened++
	snap := append([]fakeMsg(nil), s.msgs...)
	return &fakeMailbox{s: s, snap: snap, del: map[string]bool{}}, nil
}

type fakeMailbox struct {
	s      *fakeServer
	snap   []fakeMsg
	del    map[string]bool
	broken bool
	closed bool
}

func (m *fakeMailbox) Key() string { return m.s.key }

func (m *fakeMailbox) List(ctx context.Context) ([]Message, error) {
	out := make([]Message, len(m.snap))
	for i, x := range m.snap {
		out[i] = Message{UID: x.uid, Num: uint32(i + 1), Size: int64(len(x.body))}
	}
	return out, nil
}

var errCut = errkind.Temporary(errkind.Network, "fake", "connection reset by peer")

func (m *fakeMailbox) Retrieve(ctx context.Context, msgs []Message, fn func(Message, io.Reader) error) error {
	for i, x := range msgs {
		if m.broken {
			return errCut
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if h := m.s.retrieveHook; h != nil {
			h(x)
		}
		body := m.snap[x.Num-1].body
		if m.s.cutAfter > 0 && i+1 == m.s.cutAfter {
			m.broken = true
			half := io.MultiReader(bytes.NewReader(body[:len(body)/2]), errReader{errCut})
			if err := fn(x, half); err != nil {
				return err
			}
			return errCut
		}
		if err := fn(x, bytes.NewReader(body)); err != nil {
			return err
		}
		m.s.mu.Lock()
		m.s.retrieved++
		m.s.mu.Unlock()
	}
	return nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (m *fakeMailbox) Delete(ctx context.Context, msgs []Message) error {
	if m.broken {
		return errCut
	}
	if h := m.s.deleteHook; h != nil {
		h(msgs)
	}
	for _, x := range msgs {
		m.del[x.UID] = true
	}
	return nil
}

func (m *fakeMailbox) Close(ctx context.Context, commit bool) error {
	if m.closed {
		return errors.New("closed twice")
	}
	m.closed = true
	if !commit || m.broken {
		return nil
	}
	if m.s.cutQuit {
		return errCut
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var keep []fakeMsg
	for _, x := range m.s.msgs {
		if !m.del[x.uid] {
			keep = append(keep, x)
		}
	}
	m.s.msgs = keep
	return nil
}

// fakeTarget records deliveries; fail decides per delivery (by Message-ID).
type fakeTarget struct {
	mu    sync.Mutex
	got   []fakeDelivery
	calls int
	fail  func(msgID string, call int) error
	block chan struct{} // when set, deliveries wait for it to close
}

type fakeDelivery struct {
	env  deliver.Envelope
	data []byte
}

func (t *fakeTarget) Deliver(ctx context.Context, env deliver.Envelope, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if t.block != nil {
		select {
		case <-t.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.mu.Lock()
	t.calls++
	call := t.calls
	t.mu.Unlock()
	if t.fail != nil {
		if err := t.fail(parseHead(data).MessageID, call); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.got = append(t.got, fakeDelivery{env, data})
	t.mu.Unlock()
	return nil
}

func (t *fakeTarget) Close() error { return nil }

// ids returns the Message-IDs delivered, sorted, with repeats.
func (t *fakeTarget) ids() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, d := range t.got {
		out = append(out, parseHead(d.data).MessageID)
	}
	sort.Strings(out)
	return out
}

func msgText(i int, extra string) string {
	return fmt.Sprintf("Return-Path: <sender%d@example.org>\nMessage-ID: <m%d@test>\nSubject: test %d\n%s\nbody %d\n%s", i, i, i, "", i, extra)
}

func idList(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("<m%d@test>", i))
	}
	sort.Strings(out)
	return out
}

func sameIDs(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
