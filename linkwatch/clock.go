package linkwatch

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// clockJumps returns a channel that receives a value whenever the wall clock
// jumps: settimeofday, an NTP step, and resume from suspend (the kernel
// counts the time slept as a CLOCK_REALTIME step relative to
// CLOCK_MONOTONIC). It arms a timerfd on CLOCK_REALTIME far in the future
// with TFD_TIMER_CANCEL_ON_SET (timerfd_create(2)): a read then fails with
// ECANCELED exactly when the clock was set, so the daemon sleeps until then
// instead of comparing clocks on a polling timer.
func clockJumps(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "timerfd_create", err)
	}
	arm := func() error {
		far := time.Now().AddDate(100, 0, 0).Unix()
		return unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET,
			&unix.ItimerSpec{Value: unix.Timespec{Sec: far}}, nil)
	}
	if err := arm(); err != nil {
		unix.Close(fd)
		return nil, errkind.WrapPermanent(errkind.Internal, "timerfd_settime", err)
	}
	// A non-blocking fd given to os.NewFile is served by the runtime's
	// poller, so Read parks the goroutine and Close wakes it.
	f := os.NewFile(uintptr(fd), "timerfd-realtime")
	ch := make(chan struct{}, 1)
	context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		var buf [8]byte
		for {
			_, err := f.Read(buf[:])
			switch {
			case errors.Is(err, unix.ECANCELED):
				select {
				case ch <- struct{}{}:
				default:
				}
			case err != nil:
				return // closed
			}
			if arm() != nil {
				return
			}
		}
	}()
	return ch, nil
}
