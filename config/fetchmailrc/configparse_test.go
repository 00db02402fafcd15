package fetchmailrc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkctl/linkctl/config"
)

// The converted samples must be configs linkctl accepts: config.Parse is
// what `linkctl check` runs.
func TestConvertedSamplesPassConfigParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.rc")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		rc, err := Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, inline := range []bool{false, true} {
			dir := t.TempDir()
			res, err := Convert(rc, Options{InlineSecrets: inline, SecretDir: dir, LocalUser: "me", Hostname: "home.example"})
			if err != nil {
				t.Fatal(err)
			}
			for p, s := range res.Secrets {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), res.YAML)
			if err != nil {
				t.Errorf("%s (inline %v): config.Parse: %v\n%s", f, inline, err, res.YAML)
				continue
			}
			if len(cfg.Fetch.Accounts) == 0 {
				t.Errorf("%s: no accounts in the parsed config", f)
			}
		}
	}
}
