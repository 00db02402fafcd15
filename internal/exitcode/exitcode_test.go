package exitcode

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The README's "## Exit status" section is generated from Table; after
// changing the table:
//
//	go test ./internal/exitcode -update-readme
//	go test ./cmd/linkctl -run TestGeneratedDocs -update-docs   (the man page)
var updateReadme = flag.Bool("update-readme", false, "rewrite the README's exit status section from Table")

var root = filepath.Join("..", "..")

const readmeHeading = "## Exit status\n\n"

// readmeSection returns the README, and where its exit-status body starts
// and ends (up to the next heading).
func readmeSection(t *testing.T) (string, int, int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, readmeHeading)
	if start < 0 {
		t.Fatalf("README.md has no %q heading", strings.TrimSpace(readmeHeading))
	}
	start += len(readmeHeading)
	end := strings.Index(s[start:], "\n## ")
	if end < 0 {
		end = len(s) - start
	}
	return s, start, start + end + 1
}

func TestReadmeMatchesTable(t *testing.T) {
	s, start, end := readmeSection(t)
	want := Markdown() + "\n"
	if *updateReadme {
		s = s[:start] + want + s[end:]
		if err := os.WriteFile(filepath.Join(root, "README.md"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := s[start:end]; got != want {
		t.Errorf("README.md's exit status section differs from internal/exitcode.Table; run\n"+
			"\tgo test ./internal/exitcode -update-readme\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// TestManPageMatchesTable reads the committed man page: cmd/linkctl's
// TestGeneratedDocs writes it from Roff.
func TestManPageMatchesTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "linkctl.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), Roff()) {
		t.Errorf("docs/linkctl.1's EXIT STATUS section differs from internal/exitcode.Table; run\n" +
			"\tgo test ./cmd/linkctl -run TestGeneratedDocs -update-docs")
	}
	// Every status in the page is one of the table's.
	sec := string(b)[strings.Index(string(b), ".SH EXIT STATUS"):]
	sec = sec[:strings.Index(sec[1:], ".SH ")+1]
	for _, m := range regexp.MustCompile(`(?m)^\.B (\d+)$`).FindAllStringSubmatch(sec, -1) {
		n, _ := strconv.Atoi(m[1])
		if _, ok := Lookup(n); !ok {
			t.Errorf("man page lists status %d, which the table does not have", n)
		}
	}
}

// fetchmail's exit codes (fetchmail(1), EXIT CODES): the numbers it uses,
// with the meaning of those linkctl shares.
var fetchmail = map[int]string{
	0: "success", 1: "no mail", 2: "socket", 3: "authentication", 4: "protocol",
	5: "syntax", 6: "permissions", 7: "server error", 8: "exclusion", 9: "lock busy",
	10: "smtp", 11: "dns", 12: "bsmtp", 13: "fetch limit", 14: "server busy", 23: "internal",
	24: "internal code", 25: "internal code", 26: "internal code", 28: "internal code", 29: "internal code",
}

// TestNumbersKeepFetchmailsMeanings: a status marked as fetchmail's is one
// fetchmail uses; linkctl's own statuses are numbers fetchmail does not
// use, so a script written for fetchmail never misreads them.
func TestNumbersKeepFetchmailsMeanings(t *testing.T) {
	seen := map[int]bool{}
	for _, c := range Table {
		if seen[c.Status] {
			t.Errorf("status %d twice in the table", c.Status)
		}
		seen[c.Status] = true
		_, used := fetchmail[c.Status]
		switch {
		case c.Fetchmail && !used:
			t.Errorf("status %d (%s) is marked as fetchmail's, but fetchmail has no such code", c.Status, c.Short)
		case !c.Fetchmail && used:
			t.Errorf("status %d (%s) is linkctl's own, but fetchmail uses %d for %q", c.Status, c.Short, c.Status, fetchmail[c.Status])
		}
	}
	for status, short := range map[int]string{FetchLimit: "fetchlimit", Internal: "internal", NoMail: "no mail"} {
		if c, ok := Lookup(status); !ok || !strings.Contains(c.Short, short) {
			t.Errorf("status %d: %+v, want the meaning fetchmail gives it (%s)", status, c, short)
		}
	}
}

func TestHelpListsEveryStatus(t *testing.T) {
	h := Help(80)
	for _, line := range strings.Split(strings.TrimSuffix(h, "\n"), "\n") {
		if len(line) > 80 {
			t.Errorf("line longer than 80 columns: %q", line)
		}
	}
	flat := strings.ReplaceAll(h, "\n", " ")
	for _, c := range Table {
		if !strings.Contains(flat, strconv.Itoa(c.Status)+" "+c.Short) {
			t.Errorf("--help misses %d %s:\n%s", c.Status, c.Short, h)
		}
	}
}
