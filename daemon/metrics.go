package daemon

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/linkctl/linkctl/history"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/pipeline"
)

// metrics accumulates what the daemon exports in node_exporter's textfile
// collector format (the Prometheus text exposition format, version 0.0.4).
// Counters start at zero when the daemon starts; Prometheus handles resets.
type metrics struct {
	runs         map[string]int64    // result -> runs
	stageRuns    map[[2]string]int64 // stage, result -> runs
	counts       map[[2]string]int64 // stage, figure -> sum ("messages", "bytes", ...)
	stageLastEnd map[string]time.Time
	lastRunEnd   time.Time
	lastRunDur   time.Duration
	upSeconds    time.Duration       // closed up intervals
	upSince      time.Time           // zero while down
	idleNotes    map[[2]string]int64 // account, folder -> IMAP watcher notifications
	idleRuns     map[string]int64    // result -> idle-triggered fetch runs (also in runs)

	// From the run history's records (history.Record):
	runBytes     map[[2]string]int64 // direction, stage -> the last run's bytes
	stageBytes   map[[2]string]int64 // direction, stage -> bytes summed over runs
	accountBytes map[[2]string]int64 // direction, account -> bytes summed over runs
	linkBytes    map[string]int64    // direction -> the link's counters over runs
	lastExit     int
	haveRecord   bool
}

func newMetrics() *metrics {
	return &metrics{runs: map[string]int64{}, stageRuns: map[[2]string]int64{},
		counts: map[[2]string]int64{}, stageLastEnd: map[string]time.Time{},
		idleNotes: map[[2]string]int64{}, idleRuns: map[string]int64{},
		runBytes: map[[2]string]int64{}, stageBytes: map[[2]string]int64{}, accountBytes: map[[2]string]int64{},
		linkBytes: map[string]int64{}}
}

func (m *metrics) addRun(rep pipeline.RunReport) {
	m.runs[string(rep.Result)]++
	m.lastRunEnd, m.lastRunDur = rep.End, rep.End.Sub(rep.Start)
	for _, s := range rep.Stages {
		m.stageRuns[[2]string{s.Name, string(s.Result)}]++
		if !s.End.IsZero() {
			m.stageLastEnd[s.Name] = s.End
		}
		for k, v := range s.Counts {
			m.counts[[2]string{s.Name, k}] += v
		}
	}
}

// addRecord takes the byte figures of a run's history record.
func (m *metrics) addRecord(r history.Record) {
	m.haveRecord, m.lastExit = true, r.Exit
	clear(m.runBytes)
	for _, s := range r.Stages {
		if s.BytesDown == 0 && s.BytesUp == 0 {
			continue
		}
		m.runBytes[[2]string{"down", s.Name}] = s.BytesDown
		m.runBytes[[2]string{"up", s.Name}] = s.BytesUp
		m.stageBytes[[2]string{"down", s.Name}] += s.BytesDown
		m.stageBytes[[2]string{"up", s.Name}] += s.BytesUp
	}
	for _, a := range r.Accounts {
		m.accountBytes[[2]string{"down", a.Name}] += a.BytesDown
		m.accountBytes[[2]string{"up", a.Name}] += a.BytesUp
	}
	if r.LinkRX != nil && r.LinkTX != nil {
		m.linkBytes["down"] += int64(*r.LinkRX)
		m.linkBytes["up"] += int64(*r.LinkTX)
	}
}

// idleNotify counts a watcher's notification.
func (m *metrics) idleNotify(account, folder string) {
	m.idleNotes[[2]string{account, folder}]++
}

// idleRun counts an idle-triggered fetch run (addRun counted it as a run
// too: its fetch figures are in the fetch stage's series).
func (m *metrics) idleRun(rep pipeline.RunReport) { m.idleRuns[string(rep.Result)]++ }

func (m *metrics) linkUp(up bool, at time.Time) {
	switch {
	case up && m.upSince.IsZero():
		m.upSince = at
	case !up && !m.upSince.IsZero():
		m.upSeconds += at.Sub(m.upSince)
		m.upSince = time.Time{}
	}
}

// render writes the textfile. Series are sorted so that the file only
// changes where a value does.
func (m *metrics) render(now time.Time) []byte {
	var b strings.Builder
	head := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	// byLabel and byLabels write a family with one series per key of m:
	// a label l, or labels l0 and l1, the key's values.
	byLabel := func(name, typ, help, l string, m map[string]int64) {
		head(name, typ, help)
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(&b, "%s{%s=%s} %d\n", name, l, label(k), m[k])
		}
	}
	byLabels := func(name, typ, help, l0, l1 string, m map[[2]string]int64) {
		head(name, typ, help)
		for _, k := range sortedPairs(m) {
			fmt.Fprintf(&b, "%s{%s=%s,%s=%s} %d\n", name, l0, label(k[0]), l1, label(k[1]), m[k])
		}
	}
	byLabel("linkctl_runs_total", "counter", "Pipeline runs since the daemon started, by result.", "result", m.runs)
	byLabels("linkctl_stage_runs_total", "counter", "Stage runs since the daemon started, by stage and result.", "stage", "result", m.stageRuns)
	byLabels("linkctl_stage_count_total", "counter", "Figures stages report (messages, bytes, deferred, ...), summed over runs.", "stage", "name", m.counts)
	var msgs, bytes int64
	for k, v := range m.counts {
		if k[0] == "fetch" {
			switch k[1] {
			case "messages":
				msgs += v
			case "bytes":
				bytes += v
			}
		}
	}
	head("linkctl_fetched_messages_total", "counter", "Messages fetched and delivered locally.")
	fmt.Fprintf(&b, "linkctl_fetched_messages_total %d\n", msgs)
	head("linkctl_fetched_bytes_total", "counter", "Bytes of messages fetched and delivered locally.")
	fmt.Fprintf(&b, "linkctl_fetched_bytes_total %d\n", bytes)
	head("linkctl_stage_last_end_timestamp_seconds", "gauge", "When each stage last ended (Unix time).")
	for _, k := range sortedKeys(m.stageLastEnd) {
		fmt.Fprintf(&b, "linkctl_stage_last_end_timestamp_seconds{stage=%s} %s\n", label(k), unixTime(m.stageLastEnd[k]))
	}
	if !m.lastRunEnd.IsZero() {
		head("linkctl_last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time).")
		fmt.Fprintf(&b, "linkctl_last_run_timestamp_seconds %s\n", unixTime(m.lastRunEnd))
		head("linkctl_last_run_duration_seconds", "gauge", "How long the last run took.")
		fmt.Fprintf(&b, "linkctl_last_run_duration_seconds %.3f\n", m.lastRunDur.Seconds())
	}
	byLabels("linkctl_run_bytes", "gauge", "Bytes the last run moved, as its stages counted them, by direction and stage.", "direction", "stage", m.runBytes)
	byLabels("linkctl_stage_bytes_total", "counter", "Bytes moved by each stage, summed over runs, by direction and stage.", "direction", "stage", m.stageBytes)
	byLabels("linkctl_account_bytes_total", "counter", "Bytes exchanged with each mail account's server, summed over runs, by direction and account.", "direction", "account", m.accountBytes)
	byLabel("linkctl_link_run_bytes_total", "counter", "The link's own counters (RX down, TX up) over the runs, whatever else used the link meanwhile.", "direction", m.linkBytes)
	if m.haveRecord {
		head("linkctl_last_run_exit_status", "gauge", "The exit status of the last run (as `linkctl run` would exit).")
		fmt.Fprintf(&b, "linkctl_last_run_exit_status %d\n", m.lastExit)
	}
	byLabels("linkctl_idle_notifications_total", "counter", "New-mail notifications from the IMAP watchers (IDLE or polling), by account and folder.", "account", "folder", m.idleNotes)
	byLabel("linkctl_idle_fetch_runs_total", "counter", "Runs that fetched one account after an IMAP watcher's notification (also counted in linkctl_runs_total), by result.", "result", m.idleRuns)
	up, total := 0, m.upSeconds
	if !m.upSince.IsZero() {
		up, total = 1, total+now.Sub(m.upSince)
	}
	head("linkctl_link_up", "gauge", "1 while the watched uplink is usable.")
	fmt.Fprintf(&b, "linkctl_link_up %d\n", up)
	head("linkctl_link_up_seconds_total", "counter", "Seconds the uplink was usable since the daemon started.")
	fmt.Fprintf(&b, "linkctl_link_up_seconds_total %.3f\n", total.Seconds())
	return []byte(b.String())
}

// writeMetrics replaces path atomically (write a temp file, fsync, rename),
// so node_exporter never reads half a file.
func writeMetrics(path string, data []byte) error {
	if err := renameio.WriteFile(path, data, 0o644); err != nil {
		return errkind.WrapTemporary(errkind.Internal, "write metrics_file "+path, err)
	}
	return nil
}

func unixTime(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixNano())/1e9) }

// label quotes a label value as the exposition format wants: backslash,
// double quote and newline escaped.
func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedPairs(m map[[2]string]int64) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}
