package authmech

import (
	"slices"
	"strings"
	"testing"
)

// TestParse: every mechanism parses, whatever its case, to itself; what
// no client speaks is refused with the list to choose from.
func TestParse(t *testing.T) {
	for _, m := range All() {
		for _, s := range []string{string(m), strings.ToUpper(string(m))} {
			if got, err := Parse(s); err != nil || got != m {
				t.Errorf("Parse(%q) = %q, %v; want %q", s, got, err, m)
			}
		}
	}
	for _, s := range []string{"", "cram-md5", "gssapi", "plain ", "ntlm"} {
		if m, err := Parse(s); err == nil || !strings.Contains(err.Error(), strings.Join(Names(), ", ")) {
			t.Errorf("Parse(%q) = %q, %v; want an error listing every mechanism", s, m, err)
		}
	}
	if names := slices.Sorted(slices.Values(Names())); len(slices.Compact(names)) != len(All()) {
		t.Errorf("Names %v: not one distinct name per member of All %v", Names(), All())
	}
}

// TestOAuth: only the two token mechanisms send an OAuth2 token.
func TestOAuth(t *testing.T) {
	for _, m := range All() {
		if want := m == XOAuth2 || m == OAuthBearer; m.OAuth() != want {
			t.Errorf("%s.OAuth() = %v", m, m.OAuth())
		}
	}
}
