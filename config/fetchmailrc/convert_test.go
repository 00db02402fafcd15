package fetchmailrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
	"go.yaml.in/yaml/v3"
)

func convert(t *testing.T, src string, opts Options) *Result {
	t.Helper()
	rc := mustParse(t, src)
	res, err := Convert(rc, opts)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res
}

// decoded is the converted YAML read back generically, so that tests assert
// on structure rather than on layout.
func decoded(t *testing.T, res *Result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(res.YAML, &m); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
	}
	return m
}

func accounts(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	f, _ := m["fetch"].(map[string]any)
	list, _ := f["accounts"].([]any)
	var out []map[string]any
	for _, a := range list {
		out = append(out, a.(map[string]any))
	}
	return out
}

func TestConvertBookSample(t *testing.T) {
	data, _ := os.ReadFile("testdata/book-sample.rc")
	res := convert(t, string(data), Options{SecretDir: "/etc/linkctl", LocalUser: "me", Hostname: "home.example"})
	m := decoded(t, res)
	if got := m["pipeline"].([]any); len(got) != 2 || got[0] != "etrn" || got[1] != "fetch" {
		t.Errorf("pipeline = %v", got)
	}
	if l := m["log"].(map[string]any); l["file"] != "/var/log/fetchmail.log" || l["syslog"] != true {
		t.Errorf("log = %v", l)
	}
	srv := m["etrn"].(map[string]any)["servers"].([]any)[0].(map[string]any)
	if srv["server"] != "pop.essadm.org:25" || srv["domains"].([]any)[0] != "home.example" {
		t.Errorf("etrn server = %v", srv)
	}
	acc := accounts(t, m)
	if len(acc) != 3 {
		t.Fatalf("accounts = %v", acc)
	}
	if acc[0]["user"] != "ispuser" || acc[0]["proto"] != "pop3" || acc[0]["to"].([]any)[0] != "me" ||
		acc[0]["password_file"] != "/etc/linkctl/pop.essadm.org.pass" {
		t.Errorf("account 1 = %v", acc[0])
	}
	if acc[1]["user"] != "rjchavez24" || acc[1]["to"].([]any)[0] != "chavez" || acc[1]["proto"] != "imap" {
		t.Errorf("account 2 = %v", acc[1])
	}
	if acc[2]["auth"] != "external" || len(acc[2]["plugin"].([]any)) != 3 || acc[2]["tls"] != "none" {
		t.Errorf("account 3 = %v", acc[2])
	}
	if res.Secrets["/etc/linkctl/pop.essadm.org.pass"] != "password" ||
		res.Secrets["/etc/linkctl/mailer.notaol.org.pass"] != "another-password" {
		t.Errorf("secrets = %v", res.Secrets)
	}
	if strings.Contains(string(res.YAML), "another-password") {
		t.Errorf("a password reached the YAML:\n%s", res.YAML)
	}
}

func TestConvertInlineSecrets(t *testing.T) {
	res := convert(t, `poll pop.example.net user u pass "p: w#1"`, Options{InlineSecrets: true})
	a := accounts(t, decoded(t, res))[0]
	if a["password"] != "p: w#1" || len(res.Secrets) != 0 {
		t.Errorf("account %v, secrets %v", a, res.Secrets)
	}
}

func TestConvertMultidrop(t *testing.T) {
	// Without an envelope header fetchmail guessed from To/Cc; linkctl will
	// not, so the mailbox becomes a single drop with a warning.
	data, _ := os.ReadFile("testdata/book-multidrop.rc")
	res := convert(t, string(data), Options{})
	a := accounts(t, decoded(t, res))[0]
	if a["localdomains"] != nil || strings.Join(toStrings(a["to"]), ",") != "trucks" {
		t.Errorf("account = %v", a)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "test.rc:1: multidrop without an envelope header") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if !strings.Contains(string(res.YAML), "# localdomains: [zoas.org, ahania.com]") {
		t.Errorf("the localdomains are not kept as a comment:\n%s", res.YAML)
	}
	// With one, it stays multidrop and '*' passes local recipients through.
	res = convert(t, `poll mx.example envelope Delivered-To localdomains a.org b.org user box pass p to joe * here`, Options{InlineSecrets: true})
	a = accounts(t, decoded(t, res))[0]
	if strings.Join(toStrings(a["localdomains"]), ",") != "a.org,b.org,mx.example" || a["envelope"] != "Delivered-To" ||
		strings.Join(toStrings(a["to"]), ",") != "joe,*" {
		t.Errorf("account = %v", a)
	}
	if _, err := config.Parse("x.yaml", res.YAML); err != nil {
		t.Errorf("config.Parse: %v\n%s", err, res.YAML)
	}
}

func TestConvertDeliveryAndWarnings(t *testing.T) {
	src := `set daemon 600
poll a.example proto pop3 user x pass y ssl no sslcertck smtphost mx.local/2525 limit 5000 fetchlimit 9 expunge 3
poll b.example proto imap user z pass w mda "/usr/bin/procmail -d %T" folder INBOX Lists keep
  preconnect "/usr/local/bin/open-tunnel" postconnect "/bin/echo done > /tmp/x" esmtppassword "topsecret"
`
	res := convert(t, src, Options{})
	m := decoded(t, res)
	if m["link"].(map[string]any)["interval"] != "600s" {
		t.Errorf("link = %v", m["link"])
	}
	acc := accounts(t, m)
	a, b := acc[0], acc[1]
	if a["tls"] != "implicit" || a["limit"] != 5000 || a["fetchlimit"] != 9 || a["commit_every"] != 3 ||
		a["deliver"].(map[string]any)["smtp"] != "mx.local:2525" {
		t.Errorf("a = %v", a)
	}
	if b["keep"] != true || len(b["folders"].([]any)) != 2 ||
		strings.Join(toStrings(b["deliver"].(map[string]any)["mda"]), " ") != "/usr/bin/procmail -d %T" {
		t.Errorf("b = %v", b)
	}
	pipe := m["pipeline"].([]any)
	if len(pipe) != 3 || pipe[1] != "fetch" {
		t.Fatalf("pipeline = %v", pipe)
	}
	if pre := toStrings(pipe[0].(map[string]any)["exec"]); len(pre) != 1 || pre[0] != "/usr/local/bin/open-tunnel" {
		t.Errorf("preconnect step = %v", pre)
	}
	if post := toStrings(pipe[2].(map[string]any)["exec"]); len(post) != 3 || post[0] != "/bin/sh" {
		t.Errorf("postconnect step = %v", post)
	}
	all := strings.Join(res.Warnings, "\n")
	for _, want := range []string{":2: no sslcertck", ":3: keep:", "esmtppassword ***"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "topsecret") || strings.Contains(string(res.YAML), "topsecret") {
		t.Errorf("esmtppassword leaked")
	}
	if !strings.Contains(string(res.YAML), "# fetchmail (line 2): no sslcertck") {
		t.Errorf("no comment for sslcertck in\n%s", res.YAML)
	}
}

// fetchmail qualifies bare names in RCPT TO with smtpaddress, else with
// the smtphost's name; the conversion keeps that as deliver.domain.
func TestConvertSMTPAddress(t *testing.T) {
	src := `poll a.example proto pop3 user x pass y smtphost mx.local/2525
poll b.example proto pop3 user x pass y smtphost mx.local smtpaddress example.org
poll c.example proto pop3 user x pass y smtphost 127.0.0.1
poll d.example proto pop3 user x pass y mda "/usr/bin/procmail -d %T" smtpaddress example.org
`
	res := convert(t, src, Options{})
	want := []string{"mx.local", "example.org", "", ""}
	for i, a := range accounts(t, decoded(t, res)) {
		d := a["deliver"].(map[string]any)
		if got, _ := d["domain"].(string); got != want[i] {
			t.Errorf("account %d: deliver %v, want domain %q", i, d, want[i])
		}
	}
	all := strings.Join(res.Warnings, "\n")
	if !strings.Contains(all, ":4: smtpaddress example.org: only SMTP delivery") || strings.Contains(all, ":2: \"smtpaddress") {
		t.Errorf("warnings:\n%s\nwant one for smtpaddress with an mda (line 4), none where it became deliver.domain", all)
	}
	if _, err := config.Parse("converted.yaml", res.YAML); err != nil {
		t.Errorf("converted config does not parse: %v\n%s", err, res.YAML)
	}
}

func TestConvertShellMDAFallsBack(t *testing.T) {
	res := convert(t, `poll a user x mda "procmail | tee log"`, Options{})
	a := accounts(t, decoded(t, res))
	d := decoded(t, res)["fetch"].(map[string]any)["deliver"].(map[string]any)
	if d["smtp"] != "localhost:25" || len(a) != 1 || !strings.Contains(strings.Join(res.Warnings, ""), "needs a shell") {
		t.Errorf("deliver = %v, warnings %v", d, res.Warnings)
	}
}

func TestConvertNothing(t *testing.T) {
	rc := mustParse(t, "set syslog\nskip a user b")
	if _, err := Convert(rc, Options{}); err == nil {
		t.Fatal("Convert of a file with only skip entries succeeded")
	}
}

func TestSplitArgv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`ssh %h /usr/sbin/imapd`, "ssh|%h|/usr/sbin/imapd", true},
		{`a 'b c' "d \"e\"" f\ g`, `a|b c|d "e"|f g`, true},
		{`a | b`, "", false},
		{`echo $HOME`, "", false},
		{`echo "$HOME"`, "", false},
		{`a 'open`, "", false},
		{``, "", false},
	} {
		got, ok := splitArgv(tc.in)
		if ok != tc.ok || (ok && strings.Join(got, "|") != tc.want) {
			t.Errorf("splitArgv(%q) = %q, %v", tc.in, got, ok)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// The shipped samples must keep converting (CI's shared copy may differ).
func TestSamplesConvert(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.rc")
	if len(files) < 2 {
		t.Fatalf("samples missing: %v", files)
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		rc, err := Parse(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		res, err := Convert(rc, Options{})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		decoded(t, res)
	}
}
