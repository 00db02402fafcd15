package fetchmailrc

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: any input gives an RC or a positioned error, never a panic or
// a hang, and whatever parses converts into YAML that reads back.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.rc")
	for _, p := range files {
		if d, err := os.ReadFile(p); err == nil {
			f.Add(d)
		}
	}
	f.Add([]byte(`poll x user "a\x41\101" there is b c "d"=e * here; no keep mda "m %T" plugin 'p'`))
	f.Add([]byte("defaults ssl\nset no syslog\nskip y envelope 2 Received localdomains a b"))
	f.Add([]byte("poll x user a smtphost 'm x: y/25' smtpaddress '[192.0.2.6]'\npoll y user b smtpaddress \"d: {x}\" lmtp"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := Parse("fuzz.rc", data)
		if err != nil {
			return
		}
		res, err := Convert(rc, Options{InlineSecrets: len(data)%2 == 0})
		if err != nil {
			return
		}
		var m map[string]any
		if err := yaml.Unmarshal(res.YAML, &m); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
		}
	})
}
