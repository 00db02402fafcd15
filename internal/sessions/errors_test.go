package sessions

import (
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// TestIPv6Errors: a host without IPv6 lists its IPv4 sessions; any other
// failure of either dump is an error (temporary, Internal), never a list
// that may have missed a relay still delivering. Before one package did
// both, the etrn quiet wait ignored every IPv6 error while the drop stage
// failed on every one.
func TestIPv6Errors(t *testing.T) {
	v4 := []*netlink.Socket{sock(tcpEstablished, "192.0.2.1", 25, "192.0.2.7", 40000)}
	v6 := []*netlink.Socket{sock(tcpEstablished, "2001:db8::2", 25, "2001:db8::1", 40001)}
	f := Filter{LocalPorts: []int{25}}
	tests := []struct {
		name         string
		v4err, v6err error
		want         int
		wantErr      string // "" = no error
	}{
		{"both answer", nil, nil, 2, ""},
		{"kernel without IPv6 (ENOENT)", nil, syscall.ENOENT, 1, ""},
		{"IPv6 family refused (EAFNOSUPPORT)", nil, syscall.EAFNOSUPPORT, 1, ""},
		{"IPv6 protocol refused (EPROTONOSUPPORT)", nil, syscall.EPROTONOSUPPORT, 1, ""},
		{"IPv6 dump fails (ENOBUFS)", nil, syscall.ENOBUFS, 0, "sock_diag IPv6"},
		{"IPv6 dump not permitted (EPERM)", nil, syscall.EPERM, 0, "sock_diag IPv6"},
		{"IPv4 dump fails", syscall.ENOBUFS, nil, 0, "sock_diag IPv4"},
		{"IPv4 ENOENT is not 'no IPv6'", syscall.ENOENT, nil, 0, "sock_diag IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dump := func(fam uint8) ([]*netlink.Socket, error) {
				if fam == unix.AF_INET6 {
					if tt.v6err != nil {
						return nil, tt.v6err
					}
					return v6, nil
				}
				if tt.v4err != nil {
					return nil, tt.v4err
				}
				return v4, nil
			}
			got, err := list(dump, f)
			if tt.wantErr == "" {
				if err != nil || len(got) != tt.want {
					t.Fatalf("list = %v, %v; want %d sessions, no error", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("list = %v, %v; want an error naming %q", got, err, tt.wantErr)
			}
			if errkind.KindOf(err) != errkind.Internal || !errkind.IsTemporary(err) {
				t.Errorf("err %v: kind %v temp %v, want Internal, temporary", err, errkind.KindOf(err), errkind.IsTemporary(err))
			}
		})
	}
}

// TestDumpInterruptedIsRetried: a dump the kernel flags as interrupted
// may miss sockets, so it is asked again; one that stays interrupted is an
// error, not a partial list.
func TestDumpInterruptedIsRetried(t *testing.T) {
	f := Filter{LocalPorts: []int{25}}
	calls := 0
	once := func(fam uint8) ([]*netlink.Socket, error) {
		calls++
		if fam == unix.AF_INET && calls == 1 {
			return nil, netlink.ErrDumpInterrupted
		}
		if fam == unix.AF_INET {
			return []*netlink.Socket{sock(tcpEstablished, "192.0.2.1", 25, "192.0.2.7", 40000)}, nil
		}
		return nil, nil
	}
	if got, err := list(once, f); err != nil || len(got) != 1 {
		t.Errorf("interrupted once: list = %v, %v; want 1 session", got, err)
	}
	always := func(uint8) ([]*netlink.Socket, error) {
		return []*netlink.Socket{sock(tcpEstablished, "192.0.2.1", 25, "192.0.2.7", 40000)}, netlink.ErrDumpInterrupted
	}
	if got, err := list(always, f); err == nil {
		t.Errorf("always interrupted: list = %v, no error", got)
	}
}
