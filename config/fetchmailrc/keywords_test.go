package fetchmailrc

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// manualKeywords are the keywords of fetchmail's manual (fetchmail 6.4,
// "THE RUN CONTROL FILE": the global, server and user option tables, the
// authentication types and protocols, and the statements). "kerberos" (v4)
// is left out: fetchmail 6.4 as Debian builds it refuses it.
var manualKeywords = strings.Fields(`
	set daemon postmaster bouncemail spambounce softbounce logfile pidfile idfile syslog properties invisible showdots
	defaults poll server skip
	via proto protocol local localdomains port service auth authenticate timeout envelope qvirtual aka interface
	monitor plugin plugout dns checkalias uidl interval tracepolls principal esmtpname esmtppassword bad-header
	user username is to here there pass password ssl sslcert sslcertck sslcertfile sslcertpath sslfingerprint sslkey
	sslproto sslcommonname folder smtphost fetchdomains smtpaddress smtpname antispam mda bsmtp lmtp preconnect
	postconnect keep flush limitflush fetchall rewrite stripcr forcecr pass8bits dropstatus dropdelivered mimedecode
	idle limit warnings batchlimit fetchlimit fetchsizelimit fastuidl expunge
	no+envelope no+dns no+checkalias no+uidl no+sslcertck no+keep no+flush no+fetchall no+rewrite no+stripcr
	no+forcecr no+pass8bits no+dropstatus no+dropdelivered no+mimedecode no+idle no+bouncemail no+softbounce no+syslog
	any password cram-md5 ntlm gssapi kerberos_v5 otp msn ssh external
	pop3 imap apop kpop sdps rpop etrn odmr auto
`)

// The corpus uses every keyword of the manual at least once.
func TestCorpusCoversManualKeywords(t *testing.T) {
	files, _ := filepath.Glob("testdata/corpus/*.rc")
	var words strings.Builder
	comment := regexp.MustCompile(`(?m)(^|[ \t])#.*$`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		words.WriteString(" " + strings.ToLower(comment.ReplaceAllString(string(data), " ")) + " ")
	}
	text := regexp.MustCompile(`[\s,;:]+`).ReplaceAllString(words.String(), " ")
	covered := 0
	for _, k := range manualKeywords {
		w := strings.ReplaceAll(k, "+", " ")
		if strings.Contains(text, " "+w+" ") {
			covered++
		} else {
			t.Errorf("keyword %q is in no corpus file", w)
		}
	}
	t.Logf("%d corpus files cover %d of the manual's %d keywords", len(files), covered, len(manualKeywords))
}
