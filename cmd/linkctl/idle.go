package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkctl/linkctl/daemon"
)

// printWatchers is the watchers' part of `linkctl status` (text form).
func printWatchers(w io.Writer, ws []daemon.WatcherStatus, pending []string) {
	if len(ws) == 0 && len(pending) == 0 {
		return
	}
	at := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	fmt.Fprintln(w, "watchers (IMAP IDLE while the link is up):")
	for _, s := range ws {
		last := "no new mail yet"
		if !s.LastNotify.IsZero() {
			last = fmt.Sprintf("last new mail %s (%d notifications)", at(s.LastNotify), s.Notifications)
		}
		if s.Error != "" {
			last = s.Error
		}
		fmt.Fprintf(w, "  %-24s %-10s since %s  %s\n", s.Account+"/"+s.Folder, s.Mode, at(s.Since), last)
	}
	if len(pending) > 0 {
		fmt.Fprintf(w, "  fetch queued for: %s\n", strings.Join(pending, ", "))
	}
}
