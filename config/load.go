package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/linkctl/linkctl/internal/errkind"
)

// MaxSize is the largest config file Load reads. A real config is a few
// kilobytes; the cap keeps a mistaken -c /dev/zero from eating memory.
const MaxSize = 1 << 20

// Load reads, validates and permission-checks the config file at path.
//
// Errors: a missing or unreadable file, YAML syntax errors and validation
// problems are errkind.Usage (exit 5), the validation problems as Errors
// (one "FILE:LINE: path: what (expected)" line each); a file that holds an
// inline password and is readable by group or others is errkind.Permission
// (exit 6) with the chmod that fixes it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > MaxSize {
		return nil, errkind.Permanent(errkind.Usage, "", "%s: larger than %d bytes (expected a linkctl YAML config)", path, MaxSize)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot stat config "+path, err)
	}
	cfg, problems := parse(path, data, absDir(path), ownerOf(fi))
	if len(problems) > 0 {
		return nil, errkind.WrapPermanent(errkind.Usage, "", problems)
	}
	if err := checkFileMode(fi, path, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func readError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errkind.WrapPermanent(errkind.Usage, "", &quietErr{path + ": no such config file (expected a linkctl.yaml: start from the README's minimal config, or pass -c FILE)", err})
	case errors.Is(err, fs.ErrPermission):
		return errkind.WrapPermanent(errkind.Permission, "", &quietErr{path + ": cannot read the config: permission denied (run linkctl as the file's owner, or fix its mode)", err})
	}
	return errkind.WrapPermanent(errkind.Usage, "cannot read config "+path, err)
}

// quietErr shows its own message but still unwraps to the cause, so
// errors.Is(err, fs.ErrNotExist) works for callers.
type quietErr struct {
	msg string
	err error
}

func (e *quietErr) Error() string { return e.msg }
func (e *quietErr) Unwrap() error { return e.err }

// checkFileMode refuses a file that holds a secret and that other users
// can read (DESIGN.md "Secure by default"). A password_file or
// password_command keeps the secret out of the config, so the config itself
// may then be world-readable.
func checkFileMode(fi fs.FileInfo, path string, cfg *Config) error {
	if !cfg.HasInlineSecret() {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return errkind.Permanent(errkind.Permission, "",
			"%s: contains a password but is readable by group/others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// HasInlineSecret reports whether a password is written in the file itself.
func (c *Config) HasInlineSecret() bool {
	for _, s := range c.ETRN.Servers {
		if s.Password.Inline != "" {
			return true
		}
	}
	for _, a := range c.Fetch.Accounts {
		if a.Password.Inline != "" {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse validates data, read from the file called name (used in messages
// and to resolve relative paths). It does not check file permissions. "~"
// in a path is the home of the file's owner when name exists, else of the
// effective user (paths.go).
func Parse(name string, data []byte) (*Config, error) {
	owner := getEnv().euid
	if fi, err := os.Stat(name); err == nil {
		owner = ownerOf(fi)
	}
	cfg, problems := parse(name, data, absDir(name), owner)
	if len(problems) > 0 {
		return nil, errkind.WrapPermanent(errkind.Usage, "", problems)
	}
	return cfg, nil
}

func absDir(name string) string {
	dir := filepath.Dir(name)
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	return dir
}

// ownerOf is the uid owning a file.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return getEnv().euid
}

// parse is Parse with the directory relative paths are taken from (the
// file's; the working directory for command line flags) and the uid whose
// home "~" is. It returns the config, or the problems sorted by line.
func parse(name string, data []byte, dir string, owner int) (*Config, Errors) {
	d := &decoder{file: name}
	root, ok := d.parseYAML(data)
	var raw rawConfig
	if ok {
		d.decodeStruct(root, "", reflect.ValueOf(&raw).Elem())
	}
	if raw.Node == nil {
		raw.Node = &yaml.Node{Kind: yaml.MappingNode, Line: 1}
	}
	c := &checker{decoder: d, dir: dir, owner: owner, env: getEnv(), stepNames: map[string]int{}}
	var cfg *Config
	if ok && (root.Kind == yaml.MappingNode || isNull(root)) {
		cfg = c.validate(&raw)
	}
	if len(d.problems) > 0 {
		return nil, d.problems.sorted()
	}
	cfg.File = name
	return cfg, nil
}

// parseYAML returns the document's root node; ok is false after a syntax
// error (recorded as a problem).
func (d *decoder) parseYAML(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err == io.EOF {
		return &yaml.Node{Kind: yaml.MappingNode, Line: 1}, true
	}
	if err != nil {
		d.syntax(err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		d.syntax(err)
		return nil, false
	default:
		d.add(&next, "", "a second YAML document (after ---)", "expected one document per config file")
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], true
	}
	return &yaml.Node{Kind: yaml.MappingNode, Line: 1}, true
}

func (d *decoder) syntax(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.problems = append(d.problems, &Problem{File: d.file, Line: line, Msg: "YAML syntax error: " + msg, Expected: "expected key: value lines, lists as - items or [a, b]"})
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// sysEnv is what the defaults depend on; tests replace getEnv. home and
// getenv serve only the per-user defaults (XDG directories); "~" in a
// config path comes from passwdHome (paths.go), never from $HOME.
type sysEnv struct {
	euid       int
	home       string
	getenv     func(string) string
	passwdHome func(uid int) (string, error)
}

var getEnv = func() sysEnv {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	return sysEnv{euid: os.Geteuid(), home: home, getenv: os.Getenv, passwdHome: passwdHomeDir}
}

func (e sysEnv) xdg(key, fallback string) string {
	if v := e.getenv(key); filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(e.home, fallback)
}

func (e sysEnv) defaultStateDir() string {
	if e.euid == 0 {
		return "/var/lib/linkctl"
	}
	return filepath.Join(e.xdg("XDG_STATE_HOME", ".local/state"), "linkctl")
}

func (e sysEnv) defaultControlSocket(stateDir string) string {
	if e.euid == 0 {
		return "/run/linkctl/control.sock"
	}
	if v := e.getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(v) {
		return filepath.Join(v, "linkctl.sock")
	}
	return filepath.Join(stateDir, "control.sock")
}

func (e sysEnv) defaultPath() string {
	if e.euid == 0 {
		return "/etc/linkctl/linkctl.yaml"
	}
	return filepath.Join(e.xdg("XDG_CONFIG_HOME", ".config"), "linkctl", "linkctl.yaml")
}

// DefaultPath is the config file used without -c: /etc/linkctl/linkctl.yaml
// for root, else ~/.config/linkctl/linkctl.yaml ($XDG_CONFIG_HOME is
// honoured). LINKCTL_CONFIG is the CLI's business.
func DefaultPath() string { return getEnv().defaultPath() }

// DefaultStateDir is state_dir when the config does not set one (and for
// `linkctl fetch --server`, which runs without a config):
// /var/lib/linkctl for root, else $XDG_STATE_HOME/linkctl.
func DefaultStateDir() string { return getEnv().defaultStateDir() }

// DefaultControlSocket is control_socket when the config does not set one
// (and for `linkctl status` without a config): /run/linkctl/control.sock
// for root, else $XDG_RUNTIME_DIR/linkctl.sock.
func DefaultControlSocket() string {
	e := getEnv()
	return e.defaultControlSocket(e.defaultStateDir())
}
