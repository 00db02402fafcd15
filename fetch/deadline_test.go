package fetch

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
)

// scriptedMailbox lists what it is told and misbehaves as told: a listing
// that never ends, a retrieval that floods without ever handing over a
// message (an IMAP server sending untagged responses for ever), or a
// message served at a fixed rate.
type scriptedMailbox struct {
	list        []Message
	body        []byte
	endlessList bool
	flood       bool
	rate        int // bytes a second for body (0: at once)
	junk        int64
}

func (m *scriptedMailbox) Key() string { return "scripted:user@server" }

func (m *scriptedMailbox) List(ctx context.Context) ([]Message, error) {
	if m.endlessList {
		// Listing entries keep coming: only the context ends it.
		for ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		return nil, errkind.WrapTemporary(errkind.Network, "scripted LIST", context.Cause(ctx))
	}
	return m.list, nil
}

func (m *scriptedMailbox) Retrieve(ctx context.Context, msgs []Message, fn func(Message, io.Reader) error) error {
	if m.flood {
		for ctx.Err() == nil {
			m.junk += 4096 // untagged responses, read and dropped
			time.Sleep(100 * time.Microsecond)
		}
		return errkind.WrapTemporary(errkind.Network, "scripted FETCH", context.Cause(ctx))
	}
	for _, x := range msgs {
		if err := fn(x, &pacedReader{ctx: ctx, b: m.body, rate: m.rate}); err != nil {
			return err
		}
	}
	return nil
}

func (m *scriptedMailbox) Delete(context.Context, []Message) error { return nil }
func (m *scriptedMailbox) Close(context.Context, bool) error       { return nil }

// pacedReader serves b at rate bytes a second, in tenths of a second.
type pacedReader struct {
	ctx  context.Context
	b    []byte
	rate int
}

func (r *pacedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if r.rate > 0 {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.ctx.Done():
			return 0, context.Cause(r.ctx)
		}
		n = min(n, r.rate/10)
	}
	n = copy(p, r.b[:min(n, len(r.b))])
	r.b = r.b[n:]
	return n, nil
}

// runWithin runs the fetch and fails the test if it has not returned
// after limit: an engine without deadlines would hang here for ever.
func runWithin(t *testing.T, limit time.Duration, opts Options) (Result, time.Duration, error) {
	t.Helper()
	type out struct {
		res Result
		err error
	}
	ch := make(chan out, 1)
	start := time.Now()
	go func() {
		res, err := Run(context.Background(), opts, nil)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		return o.res, time.Since(start), o.err
	case <-time.After(limit):
		t.Fatalf("the fetch still runs after %v", limit)
	}
	panic("unreachable")
}

func scriptedAccount(mb *scriptedMailbox, tgt *fakeTarget) Account {
	return Account{Name: "isp", Proto: "imap", Server: "imap.example.net", Target: tgt, To: []string{"chavez"},
		Open: func(context.Context) (Mailbox, error) { return mb, nil }}
}

// A server that never stops talking ends with a temporary error naming the
// account and the deadline, within the deadline the rule gives: floor +
// announced bytes at MinRate + PerMessage.
func TestSessionDeadlineEndsFlood(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mb     *scriptedMailbox
		budget time.Duration
		what   string
	}{
		// Phase one: the floor.
		{"endless listing", &scriptedMailbox{endlessList: true}, time.Second, "while connecting, logging in and listing"},
		// Phase two: 1 s + 1 KiB at 1 KiB/s + 1 s.
		{"untagged flood", &scriptedMailbox{flood: true, list: []Message{{UID: "1", Num: 1, Size: 1024}}}, 3 * time.Second, "while retrieving 1 message, 1.0 kB announced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, took, err := runWithin(t, tc.budget+5*time.Second, Options{
				StateDir: t.TempDir(), Parallel: 1,
				SessionFloor: time.Second, MinRate: 1024, PerMessage: time.Second,
				Accounts: []Account{scriptedAccount(tc.mb, &fakeTarget{})},
			})
			if err == nil || !errkind.IsTemporary(err) {
				t.Fatalf("err %v, want a temporary error", err)
			}
			want := fmt.Sprintf("account isp: session deadline %v exceeded %s", tc.budget, tc.what)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err %q\nwant it to say %q", err, want)
			}
			if took < tc.budget || took > tc.budget+2*time.Second {
				t.Errorf("ended after %v, deadline %v", took, tc.budget)
			}
			if res.Accounts[0].Fetched != 0 {
				t.Errorf("result %+v", res.Accounts[0])
			}
		})
	}
}

// An honest slow transfer is never cut: 8 KiB at 2 KiB/s takes 4 s, four
// times the floor, and the deadline grows with what the server announced.
func TestSessionDeadlineSparesSlowTransfer(t *testing.T) {
	body := []byte(msgText(0, strings.Repeat("slow line of a big message\n", 8192/27)))
	mb := &scriptedMailbox{list: []Message{{UID: "1", Num: 1, Size: int64(len(body))}}, body: body, rate: 2048}
	tgt := &fakeTarget{}
	start := time.Now()
	res, err := Run(context.Background(), Options{
		StateDir: t.TempDir(), Parallel: 1,
		SessionFloor: time.Second, MinRate: 1024, PerMessage: time.Second,
		Accounts: []Account{scriptedAccount(mb, tgt)},
	}, nil)
	if err != nil {
		t.Fatalf("slow transfer cut after %v: %v", time.Since(start), err)
	}
	if res.Accounts[0].Fetched != 1 || len(tgt.ids()) != 1 {
		t.Fatalf("result %+v", res.Accounts[0])
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("took %v: the source was not slow, the test proves nothing", took)
	}
}

// The run deadline ends accounts that the session deadline has not yet
// ended, with a temporary error naming the account.
func TestRunDeadline(t *testing.T) {
	_, took, err := runWithin(t, 10*time.Second, Options{
		StateDir: t.TempDir(), RunTimeout: time.Second, SessionFloor: time.Minute,
		Accounts: []Account{scriptedAccount(&scriptedMailbox{endlessList: true}, &fakeTarget{})},
	})
	if err == nil || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "account isp: fetch: run deadline 1s exceeded") {
		t.Fatalf("err %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("ended after %v", took)
	}
}

// stalledServer accepts connections and never says a word; accepted
// gets a value for each connection.
func stalledServer(t *testing.T, accepted chan<- struct{}) string {
	return scripted.Listen(t, func(c net.Conn) {
		accepted <- struct{}{}
		io.Copy(io.Discard, c) // until the client or the test's end closes it
	}).Addr().String()
}

// Servers that accept and then stall hold no slot: the responsive account
// is done within a few seconds whatever Parallel is and however many
// stalled servers come before it, and the stalled ones still end with
// their own timeout error.
func TestStalledServersDoNotHoldThePool(t *testing.T) {
	const stallTimeout = 15 * time.Second
	for _, tc := range []struct{ parallel, stalled int }{{1, 1}, {1, 4}, {2, 2}, {2, 5}} {
		t.Run(fmt.Sprintf("parallel=%d/stalled=%d", tc.parallel, tc.stalled), func(t *testing.T) {
			t.Parallel()
			var accts []Account
			tgt := &fakeTarget{}
			accepted := make(chan struct{}, tc.stalled)
			for i := range tc.stalled {
				src := POP3Source{Addr: stalledServer(t, accepted), TLS: netconn.TLSNone, User: "u", Timeout: stallTimeout,
					Password: func(context.Context) (string, error) { return "p", nil }}
				accts = append(accts, Account{Name: fmt.Sprintf("stalled%d", i), Proto: "pop3", Open: src.Open, Target: tgt, To: []string{"a"}})
			}
			good := newFakeServer("good")
			good.add(msgText(1, ""))
			// The responsive server answers once every stalled server
			// holds a connection (or after 6 s), so that the stalled
			// sessions are under way when it is served whatever order the
			// engine starts accounts in; the 6 s are over the bound, so an
			// engine that keeps the stalled ones waiting for it fails too.
			good.openHook = func(ctx context.Context) error {
				giveUp := time.After(6 * time.Second)
				for range tc.stalled {
					select {
					case <-accepted:
					case <-giveUp:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}
			accts = append(accts, Account{Name: "good", Proto: "pop3", Open: good.open, Target: tgt, To: []string{"a"}})

			start := time.Now()
			doneAt := make(chan time.Duration, 1)
			sink := func(ev event.Event) {
				if ev.Type == event.Message && ev.Account == "good" {
					doneAt <- time.Since(start)
				}
			}
			res, _ := Run(context.Background(), Options{StateDir: t.TempDir(), Parallel: tc.parallel, Accounts: accts}, sink)
			select {
			case d := <-doneAt:
				t.Logf("the responsive account delivered after %v", d.Round(time.Millisecond))
				if d > 5*time.Second {
					t.Errorf("the responsive account delivered after %v, behind %d stalled servers", d, tc.stalled)
				}
			default:
				t.Fatalf("the responsive account delivered nothing: %+v", res.Accounts[tc.stalled])
			}
			if a := res.Accounts[tc.stalled]; a.Err != nil || a.Fetched != 1 {
				t.Errorf("responsive account: %+v", a)
			}
			for _, a := range res.Accounts[:tc.stalled] {
				if a.Err == nil || !errkind.IsTemporary(a.Err) || errkind.KindOf(a.Err) != errkind.Network {
					t.Errorf("%s: err %v, want a temporary network error", a.Account, a.Err)
				}
				t.Logf("%s: %v", a.Account, a.Err)
			}
		})
	}
}

// A logged-in session that waits longer than SlotWait for a retrieval
// slot is closed unused and opened again later; nothing is lost or
// fetched twice.
func TestSlotWaitReopens(t *testing.T) {
	dir := t.TempDir()
	busy := newFakeServer("busy")
	busy.add(msgText(0, ""))
	slowTgt := &fakeTarget{block: make(chan struct{})}
	time.AfterFunc(time.Second, func() { close(slowTgt.block) })
	waiting := newFakeServer("waiting")
	waiting.add(msgText(1, ""))
	waiting.openHook = func(context.Context) error {
		time.Sleep(100 * time.Millisecond) // busy takes the slot first
		return nil
	}
	tgt := &fakeTarget{}
	res, err := Run(context.Background(), Options{
		StateDir: dir, Parallel: 1, SlotWait: 300 * time.Millisecond,
		Accounts: []Account{
			{Name: "busy", Open: busy.open, Target: slowTgt, To: []string{"a"}},
			{Name: "waiting", Open: waiting.open, Target: tgt, To: []string{"a"}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accounts[0].Fetched != 1 || res.Accounts[1].Fetched != 1 || !sameIDs(tgt.ids(), []string{"<m1@test>"}) {
		t.Fatalf("results %+v", res.Accounts)
	}
	if waiting.opened < 2 {
		t.Errorf("the waiting account opened %d session(s), want it closed and opened again", waiting.opened)
	}
	if waiting.count() != 0 || busy.count() != 0 {
		t.Errorf("left on the servers: %d, %d", busy.count(), waiting.count())
	}
}

// The rule with the defaults: 2m + announced bytes at 1 KiB/s shared by
// Parallel + 5 s a message, in whole seconds.
func TestTransferBudget(t *testing.T) {
	for _, tc := range []struct {
		parallel int
		sizes    []int64
		want     time.Duration
	}{
		{2, nil, 2 * time.Minute},
		{2, []int64{2733, 2733, 2734}, 152 * time.Second}, // 120 + 16.02 + 15, the example of docs/deadlines.md
		{1, []int64{10 << 20}, 120*time.Second + 10240*time.Second + 5*time.Second},
		{2, []int64{-1}, 125 * time.Second}, // a nonsense size earns nothing
	} {
		var batch []Message
		for _, s := range tc.sizes {
			batch = append(batch, Message{Size: s})
		}
		if got := newLimits(Options{Parallel: tc.parallel}).transferBudget(batch); got != tc.want {
			t.Errorf("parallel %d, sizes %v: %v, want %v", tc.parallel, tc.sizes, got, tc.want)
		}
	}
}
