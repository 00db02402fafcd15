package flush

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summary renders messages compactly for comparison:
// "ID queue [A][H] sender -> rcpt,rcpt(D) : reason".
func summary(msgs []Message) string {
	var lines []string
	for _, m := range msgs {
		flags := ""
		if m.Active {
			flags += "A"
		}
		if m.Held {
			flags += "H"
		}
		var rc []string
		for _, r := range m.Recipients {
			a := r.Address
			if r.Done {
				a += "(D)"
			}
			rc = append(rc, a)
		}
		lines = append(lines, m.ID+" "+m.Queue+" "+flags+" <"+m.Sender+"> -> "+strings.Join(rc, ",")+" : "+m.Reason)
	}
	return strings.Join(lines, "\n")
}

func TestParseCaptured(t *testing.T) {
	refused := "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"
	cases := []struct {
		file  string
		parse func([]byte) ([]Message, error)
		want  []string
	}{
		{"postfix-3.7.11-postqueue-j-empty.txt", ParsePostfixJSON, nil},
		{"postfix-3.7.11-postqueue-j.txt", ParsePostfixJSON, []string{
			"880709843C3 deferred  <alice@home.test> -> bob@etrn.test : " + refused,
			"53A89984076 deferred  <zoé@home.test> -> frank@etrn.test : delivery temporarily suspended: " + refused,
			"B209D9843E2 deferred  <big@home.test> -> big@etrn.test : " + refused,
			`A20BC9842E2 deferred  <we.ird+x@home.test> -> carol@etrn.test,dave+x@etrn.test,"o dd"@etrn.test : ` + refused,
			"A5ECA9843D3 hold H <MAILER-DAEMON> -> eve@etrn.test : " + refused,
		}},
		{"postfix-3.7.11-postqueue-p-empty.txt", ParsePostfixText, nil},
		{"postfix-3.7.11-postqueue-p.txt", ParsePostfixText, []string{
			"880709843C3 deferred  <alice@home.test> -> bob@etrn.test : " + refused,
			"53A89984076 deferred  <zoé@home.test> -> frank@etrn.test : delivery temporarily suspended: " + refused,
			"B209D9843E2 deferred  <big@home.test> -> big@etrn.test : " + refused,
			`A20BC9842E2 deferred  <we.ird+x@home.test> -> carol@etrn.test,dave+x@etrn.test,"o dd"@etrn.test : ` + refused,
			"A5ECA9843D3 hold H <MAILER-DAEMON> -> eve@etrn.test : " + refused,
		}},
		{"exim4-4.96-bp-empty.txt", ParseExim, nil},
		{"exim4-4.96-bp.txt", ParseExim, []string{
			"1xW476-0002Uv-03 frozen H <> -> eve@far.test : ",
			`1xW479-0002W6-25 queued  <"we ird"@home.test> -> carol@far.test,dave+x@far.test(D),"o dd"@far.test : `,
			"1xW479-0002WL-2Q queued  <big@home.test> -> big@far.test : ",
			"1xW47L-0002j9-0c queued  <x@home.test> -> zoé@far.test : ",
		}},
		{"sendmail-8.17.1.9-bp-empty.txt", ParseSendmail, nil},
		{"sendmail-8.17.1.9-bp-queued.txt", ParseSendmail, []string{
			"6AP4Bk8p007992 queued  <alice@home.test> -> bob@far.test : ",
			`6AP4Cl4H010242 queued  <we.ird+x@home.test> -> carol@far.test,dave+x@far.test,"o dd"@far.test : `,
			"6AP4DlK3012961 queued  <<>> -> eve@far.test : ",
		}},
		{"sendmail-8.17.1.9-bp-deferred.txt", ParseSendmail, []string{
			"6AP4Bk8p007992 queued  <alice@home.test> -> bob@far.test : Connection refused by 127.0.0.1",
			`6AP4Cl4H010242 queued  <we.ird+x@home.test> -> carol@far.test,dave+x@far.test,"o dd"@far.test : Connection refused by 127.0.0.1`,
			"6AP4DlK3012961 queued  <<>> -> eve@far.test : Connection refused by 127.0.0.1",
		}},
		{"sendmail-8.17.1.9-bp-qQ-quarantined.txt", ParseSendmail, []string{
			`6AP4Cl4H010242 quarantine H <we.ird+x@home.test> -> carol@far.test,dave+x@far.test,"o dd"@far.test : Connection refused by 127.0.0.1`,
		}},
		{"opensmtpd-6.8.0p2-show-queue-empty.txt", ParseOpenSMTPD, nil},
		{"opensmtpd-6.8.0p2-show-queue-inflight.txt", ParseOpenSMTPD, []string{
			"0415a36e suspend AH <> -> eve@far.test : ",
			"acb777a3 inflight A <alice@home.test> -> bob@far.test : ",
			"f93f26f4 inflight A <we.ird+x@home.test> -> dave+x@far.test,carol@far.test : ",
		}},
		{"opensmtpd-6.8.0p2-show-queue-deferred.txt", ParseOpenSMTPD, []string{
			"0415a36e suspend H <> -> eve@far.test : 452 4.2.2 mailbox full, try later",
			"f93f26f4 pending  <we.ird+x@home.test> -> carol@far.test : 452 4.2.2 mailbox full, try later",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			out := readTestdata(t, tc.file)
			msgs, err := tc.parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := summary(msgs), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			// ParseAuto, for mta: command, recognises every format.
			auto, err := ParseAuto(out)
			if err != nil {
				t.Fatalf("ParseAuto: %v", err)
			}
			if summary(auto) != summary(msgs) {
				t.Errorf("ParseAuto differs:\n%s", summary(auto))
			}
		})
	}
}

func TestParseSizesAndTimes(t *testing.T) {
	msgs, _ := ParseExim(readTestdata(t, "exim4-4.96-bp.txt"))
	if msgs[2].Size != 396*1024 {
		t.Errorf("exim 396K = %d", msgs[2].Size)
	}
	msgs, _ = ParsePostfixJSON(readTestdata(t, "postfix-3.7.11-postqueue-j.txt"))
	if msgs[2].Size != 234299 {
		t.Errorf("postfix size = %d", msgs[2].Size)
	}
	msgs, _ = ParseOpenSMTPD(readTestdata(t, "opensmtpd-6.8.0p2-show-queue-deferred.txt"))
	if want := time.Unix(1795579104, 0); !msgs[1].LastTry.Equal(want) {
		t.Errorf("opensmtpd lasttry = %v, want %v", msgs[1].LastTry, want)
	}
}

func TestParseEximMsglog(t *testing.T) {
	r := ParseEximMsglog(readTestdata(t, "exim4-4.96-Mvl.txt"))
	want := map[string]string{
		"carol@far.test":  "SMTP error from remote mail server after RCPT TO:<carol@far.test>: 452 4.2.2 mailbox full, try later",
		"dave+x@far.test": "Connection refused", // its last deferral, before it was delivered
		`"o dd"@far.test`: "SMTP error from remote mail server after RCPT TO:<\"o dd\"@far.test>: 452 4.2.2 mailbox full, try later",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("reason[%q] = %q, want %q", k, r[k], v)
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for name, parse := range map[string]func([]byte) ([]Message, error){
		"postfix-json": ParsePostfixJSON, "postfix-text": ParsePostfixText, "sendmail": ParseSendmail,
		"exim": ParseExim, "opensmtpd": ParseOpenSMTPD,
	} {
		if _, err := parse([]byte("postqueue: fatal: Queue report unavailable - mail system is down\n")); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

func fuzzParser(f *testing.F, parse func([]byte) ([]Message, error), seeds ...string) {
	for _, s := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error not wrapping ErrFormat: %v", err)
			}
			return
		}
		for _, m := range msgs {
			if m.ID == "" {
				t.Errorf("message without an ID: %+v", m)
			}
		}
		_ = summary(msgs)
	})
}

func FuzzParsePostfixJSON(f *testing.F) {
	fuzzParser(f, ParsePostfixJSON, "postfix-3.7.11-postqueue-j.txt")
}
func FuzzParsePostfixText(f *testing.F) {
	fuzzParser(f, ParsePostfixText, "postfix-3.7.11-postqueue-p.txt", "postfix-3.7.11-postqueue-p-empty.txt")
}
func FuzzParseSendmail(f *testing.F) {
	fuzzParser(f, ParseSendmail, "sendmail-8.17.1.9-bp-deferred.txt", "sendmail-8.17.1.9-bp-qQ-quarantined.txt")
}
func FuzzParseExim(f *testing.F) { fuzzParser(f, ParseExim, "exim4-4.96-bp.txt") }
func FuzzParseOpenSMTPD(f *testing.F) {
	fuzzParser(f, ParseOpenSMTPD, "opensmtpd-6.8.0p2-show-queue-inflight.txt", "opensmtpd-6.8.0p2-show-queue-deferred.txt")
}
func FuzzParseAuto(f *testing.F) {
	fuzzParser(f, ParseAuto, "postfix-3.7.11-postqueue-j.txt", "exim4-4.96-bp.txt", "sendmail-8.17.1.9-bp-deferred.txt")
}
func FuzzParseEximMsglog(f *testing.F) {
	f.Add(readTestdataF(f, "exim4-4.96-Mvl.txt"))
	f.Fuzz(func(t *testing.T, data []byte) { ParseEximMsglog(data) })
}

func readTestdataF(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
