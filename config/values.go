package config

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// checker turns raw leaves into typed values. Each helper reports its own
// problem (with the node's line and the key's path) and returns the default,
// so validation goes on and finds every other problem too.
type checker struct {
	*decoder
	dir       string // relative paths are taken from the config file's directory
	owner     int    // uid owning the config file: whose home "~" is (paths.go)
	env       sysEnv
	stepNames map[string]int // explicit pipeline step names -> line
}

// scalar returns the text of a single value; ok is false when absent or
// when it is not a single value (then a problem was added).
func (c *checker) scalar(n *yaml.Node, path, expected string) (string, bool) {
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		c.add(n, path, "is "+describe(n)+", not a single value", expected)
		return "", false
	}
	return n.Value, true
}

func (c *checker) str(n *yaml.Node, path, def string) string {
	s, ok := c.scalar(n, path, "expected text")
	if !ok {
		return def
	}
	if s == "" {
		c.add(n, path, "is empty", "expected text; leave the key out for the default")
		return def
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		c.add(n, path, "contains control characters", "expected plain text")
		return def
	}
	return s
}

// word is a single token: text without blanks.
func (c *checker) word(n *yaml.Node, path, def, expected string) string {
	s := c.str(n, path, def)
	if s != def && strings.ContainsFunc(s, unicode.IsSpace) {
		c.add(n, path, fmt.Sprintf("invalid value %q", s), expected)
		return def
	}
	return s
}

func (c *checker) oneOf(n *yaml.Node, path, def string, allowed ...string) string {
	s, ok := c.scalar(n, path, "expected one of: "+strings.Join(allowed, ", "))
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(s, a) {
			return a
		}
	}
	c.add(n, path, fmt.Sprintf("invalid value %q", s), "expected one of: "+strings.Join(allowed, ", "))
	return def
}

func (c *checker) onError(n *yaml.Node, path string, def OnError) OnError {
	return OnError(c.oneOf(n, path, string(def), string(Stop), string(Continue)))
}

func (c *checker) dur(n *yaml.Node, path string, def time.Duration) time.Duration {
	const exp = "expected e.g. 2s, 500ms"
	s, ok := c.scalar(n, path, exp)
	if !ok {
		return def
	}
	if s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.add(n, path, fmt.Sprintf("invalid duration %q", s), exp)
		return def
	}
	if d < 0 {
		c.add(n, path, fmt.Sprintf("negative duration %q", s), exp)
		return def
	}
	return d
}

func (c *checker) boolean(n *yaml.Node, path string, def bool) bool {
	s, ok := c.scalar(n, path, "expected true or false")
	if !ok {
		return def
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	c.add(n, path, fmt.Sprintf("invalid value %q", s), "expected true or false")
	return def
}

func (c *checker) integer(n *yaml.Node, path string, def, lo, hi int) int {
	exp := fmt.Sprintf("expected a whole number from %d to %d", lo, hi)
	s, ok := c.scalar(n, path, exp)
	if !ok {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		c.add(n, path, fmt.Sprintf("invalid number %q", s), exp)
		return def
	}
	return int(v)
}

// size reads a byte count: 1048576, 500k, 10M, 1G (powers of 1024; a
// trailing B or iB is allowed).
func (c *checker) size(n *yaml.Node, path string) int64 {
	const exp = "expected bytes, e.g. 500000, 500k, 10M"
	s, ok := c.scalar(n, path, exp)
	if !ok {
		return 0
	}
	v, err := parseSize(s)
	if err != nil {
		c.add(n, path, fmt.Sprintf("invalid size %q", s), exp)
		return 0
	}
	return v
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return v * mult, nil
}

// list reads a list of words; a single value counts as a list of one when
// single is set (to: chavez).
func (c *checker) list(n *yaml.Node, path string, single bool, expected string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode && single {
		if s := c.word(n, path, "", expected); s != "" {
			return []string{s}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		c.add(n, path, "is "+describe(n)+", not a list", expected)
		return nil
	}
	if !c.visit(n, len(n.Content)) {
		return nil
	}
	var out []string
	for i, e := range n.Content {
		if s := c.word(resolve(e), fmt.Sprintf("%s[%d]", path, i), "", expected); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// argv reads a command as a list of arguments. linkctl never runs a shell,
// so a string with blanks is refused rather than split by guesswork.
func (c *checker) argv(n *yaml.Node, path string) []string {
	const exp = "expected a list such as [poff, provider]; linkctl runs no shell"
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		s := c.str(n, path, "")
		if s == "" {
			return nil
		}
		if strings.ContainsFunc(s, unicode.IsSpace) {
			c.add(n, path, fmt.Sprintf("command %q is one string", s), exp)
			return nil
		}
		return []string{s}
	}
	if n.Kind != yaml.SequenceNode {
		c.add(n, path, "is "+describe(n)+", not a command", exp)
		return nil
	}
	if len(n.Content) == 0 {
		c.add(n, path, "is an empty command", exp)
		return nil
	}
	if !c.visit(n, len(n.Content)) {
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		s, ok := c.scalar(resolve(e), ep, "expected text")
		if !ok {
			if isNull(e) {
				c.add(e, ep, "is empty", "expected an argument; write \"\" for an empty one")
			}
			return nil
		}
		if strings.ContainsRune(s, 0) {
			c.add(e, ep, "contains a NUL byte", "expected text")
			return nil
		}
		out = append(out, s)
	}
	if out[0] == "" {
		c.add(n, path+"[0]", "the program name is empty", exp)
		return nil
	}
	return out
}

// file reads a path (paths.go: "~" is the config owner's home, refused in
// a root-owned config; a relative path is taken from the config file's
// directory, so a config and its password file can move together).
func (c *checker) file(n *yaml.Node, path string) string {
	s := c.str(n, path, "")
	if s == "" {
		return ""
	}
	return c.path(n, path, s)
}

// hostPort checks "host[:port]" and returns host and port (0 if none).
func (c *checker) hostPort(n *yaml.Node, path string) (string, int, bool) {
	const exp = "expected host or host:port, e.g. mail.example.net:25"
	s := c.word(n, path, "", exp)
	if s == "" {
		return "", 0, false
	}
	host, port, err := splitHostPort(s)
	if err != nil {
		c.add(n, path, fmt.Sprintf("invalid server %q: %v", s, err), exp)
		return "", 0, false
	}
	return host, port, true
}

func splitHostPort(s string) (string, int, error) {
	host, portStr := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
	} else if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		host = strings.Trim(s, "[]")
	} else if strings.Contains(s, ":") {
		return "", 0, fmt.Errorf("cannot split host and port")
	}
	if host == "" {
		return "", 0, fmt.Errorf("no host name")
	}
	for _, r := range host {
		if !(r == '.' || r == '-' || r == '_' || r == ':' || r == '%' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return "", 0, fmt.Errorf("%q is not a host name", host)
		}
	}
	port := 0
	if portStr != "" {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
		}
		port = p
	}
	return host, port, nil
}

// secret reads password, password_file or password_command (one at most).
func (c *checker) secret(pw, file, cmd *yaml.Node, path string) Secret {
	var s Secret
	set := 0
	if !isNull(pw) {
		set++
		if v, ok := c.scalar(pw, join(path, "password"), "expected the password as text"); ok {
			if v == "" {
				c.add(pw, join(path, "password"), "is empty", "expected the password, or password_file")
			}
			s.Inline = v
		}
	}
	if !isNull(file) {
		set++
		s.File = c.file(file, join(path, "password_file"))
	}
	if !isNull(cmd) {
		set++
		s.Command = c.argv(cmd, join(path, "password_command"))
	}
	if set > 1 {
		at := pw
		if at == nil {
			at = file
		}
		c.add(at, path, "more than one of password, password_file, password_command", "expected exactly one")
	}
	return s
}

// envName is an environment variable name as POSIX shells accept it.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envMap reads a mapping of environment variables ({MAIL_CONFIG:
// /etc/postfix-out}) as sorted KEY=VALUE entries.
func (c *checker) envMap(n *yaml.Node, path string) []string {
	const exp = "expected a mapping of variables, e.g. {MAIL_CONFIG: /etc/postfix-out}"
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.add(n, path, "is "+describe(n)+", not a mapping", exp)
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !envName.MatchString(k.Value) {
			c.add(k, path, fmt.Sprintf("invalid variable name %q", k.Value), exp)
			continue
		}
		val, ok := c.scalar(v, path+"."+k.Value, "expected text")
		if !ok {
			continue
		}
		if strings.ContainsRune(val, 0) {
			c.add(v, path+"."+k.Value, "contains a NUL byte", "expected text")
			continue
		}
		out = append(out, k.Value+"="+val)
	}
	slices.Sort(out)
	return out
}
