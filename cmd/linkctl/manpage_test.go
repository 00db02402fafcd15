package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/exitcode"
)

// The man page and the shell completions are generated from the command
// table (Commands() and each command's flags), so they cannot drift from
// the binary: this test regenerates them and fails when the committed
// files differ. After adding a command or a flag:
//
//	go test ./cmd/linkctl -run TestGeneratedDocs -update-docs
var updateDocs = flag.Bool("update-docs", false, "rewrite docs/linkctl.1 and docs/completions/* from the command table")

type docFlag struct {
	name, arg, usage string
	isBool           bool
}

type docCommand struct {
	*command
	flags []docFlag
}

func flagsOf(setup func(*flag.FlagSet)) []docFlag {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	setup(fs)
	var out []docFlag
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		bf, ok := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, docFlag{name: f.Name, arg: arg, usage: usage, isBool: ok && bf.IsBoolFlag()})
	})
	return out
}

func docCommands() []docCommand {
	var out []docCommand
	for _, c := range Commands() {
		out = append(out, docCommand{c, flagsOf(func(fs *flag.FlagSet) { c.Setup(fs) })})
	}
	return out
}

func globalDocFlags() []docFlag {
	return flagsOf(func(fs *flag.FlagSet) {
		g := &globalFlags{logFormat: "text"}
		g.register(fs)
	})
}

func dash(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " ")
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// helpRoff lets roff fill a command's help text, except indented lines
// (examples), which keep their layout.
func helpRoff(help string) string {
	var b strings.Builder
	literal := false
	for _, l := range strings.Split(strings.TrimSpace(help), "\n") {
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && !literal:
			b.WriteString(".nf\n")
			literal = true
		case !indented && literal:
			b.WriteString(".fi\n")
			literal = false
		}
		if strings.TrimSpace(l) == "" {
			b.WriteString(".IP\n")
			continue
		}
		b.WriteString(roff(l))
	}
	if literal {
		b.WriteString(".fi\n")
	}
	return b.String()
}

func roffOpt(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(roff(strings.TrimSpace(s)), "\n"), "-", `\-`)
}

func genMan() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(".\\\" Generated from linkctl's command table by: go test ./cmd/linkctl -run TestGeneratedDocs -update-docs\n")
	w(".TH LINKCTL 1 2026 linkctl \"User Commands\"\n")
	w(".SH NAME\nlinkctl \\- do a host's mail chores while its intermittent uplink is up\n")
	w(".SH SYNOPSIS\n.B linkctl\n[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-v\\fR|\\fB\\-\\-vv\\fR] [\\fB\\-\\-log\\-format\\fR \\fBtext\\fR|\\fBjson\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n")
	w(".SH DESCRIPTION\n%s", manDescription) // roff already
	w(".SH COMMANDS\n")
	for _, c := range docCommands() {
		w(".TP\n\\fB%s\\fR", roffOpt(c.Name))
		if c.Args != "" {
			w(" %s", roffOpt(c.Args))
		}
		w("\n%s", roff(c.Summary+"."))
		if c.Help != "" {
			w(".IP\n%s", helpRoff(c.Help))
		}
		var local []docFlag
		for _, f := range c.flags {
			if !isGlobalFlag(f.name) {
				local = append(local, f)
			}
		}
		if len(local) > 0 {
			w(".RS\n")
			for _, f := range local {
				w(".TP\n.B %s", roffOpt(dash(f.name)))
				if f.arg != "" {
					w(" \\fI%s\\fR", roffOpt(f.arg))
				}
				w("\n%s", roff(f.usage))
			}
			w(".RE\n")
		}
	}
	w(".SH GLOBAL OPTIONS\nAccepted before and after the command.\n")
	for _, f := range globalDocFlags() {
		w(".TP\n.B %s", roffOpt(dash(f.name)))
		if f.arg != "" {
			w(" \\fI%s\\fR", roffOpt(f.arg))
		}
		w("\n%s", roff(f.usage))
	}
	w("%s%s%s", manConfig, exitcode.Roff(), manTail)
	return b.Bytes()
}

func isGlobalFlag(name string) bool {
	for _, g := range globalDocFlags() {
		if g.name == name {
			return true
		}
	}
	return false
}

const manDescription = `linkctl makes a host on an intermittent uplink (dial-up, ISDN, LTE on a metered
plan, an on-demand VPN) do its mail chores in the short window while the link is up, and
lets the link go as soon as they are done. When the uplink comes up (seen by netlink, or
told by linkctl up from a connection script) it runs an ordered pipeline:
.IP flush 8
start the local MTA's outbound queue run and wait until the queue has drained;
.IP etrn 8
ask remote relays with SMTP ETRN (RFC 1985) to send the mail they hold for our
domains, then wait until inbound SMTP has gone quiet;
.IP fetch 8
pull POP3 and IMAP mailboxes into the local MTA (SMTP, LMTP, an MDA or a Maildir),
deleting from the server only what was delivered and recorded;
.IP drop 8
hang the link up once everything is done and the link has been idle.
.PP
A message is deleted from a server only after the local side accepted it and its UID
was recorded: a cut link, a crash or a full disk leaves it on the server or delivered,
never neither. TLS is required for every non-loopback server unless the config says
tls: none; certificates are verified; passwords never reach logs.
.PP
To see it work without any setup, run linkctl demo.
`

const manConfig = `.SH CONFIGURATION
One YAML file: \-c FILE, else $LINKCTL_CONFIG, else /etc/linkctl/linkctl.yaml for
root and ~/.config/linkctl/linkctl.yaml for other users. Sections link, pipeline,
flush, etrn, fetch and drop; config/reference.yaml in the source shows every key with
its default. linkctl check reports every problem at once as FILE:LINE: key: what.
A config holding a password must be mode 0600. linkctl init writes a first config;
linkctl import\-fetchmailrc converts a .fetchmailrc.
`

// manTail follows the EXIT STATUS section, which comes from the table in
// internal/exitcode.
const manTail = `.SH FILES
.TP
.I /etc/linkctl/linkctl.yaml
the configuration (mode 0600 when it holds a password)
.TP
.I /var/lib/linkctl
seen\-store, last\-run status, run lock (state_dir)
.TP
.I /run/linkctl/control.sock
the daemon's control socket
.TP
.I /etc/ppp/ip\-up.d/linkctl
the pppd hook; NetworkManager, networkd\-dispatcher and ifupdown hooks are in scripts/
.SH ENVIRONMENT
.TP
.B LINKCTL_CONFIG
the config file when \-c is not given
.TP
.B LINKCTL_IFACE, LINKCTL_STAGE
set for exec stages: the interface that came up, and the stage's name
.SH EXAMPLES
.nf
linkctl demo                          # the whole pipeline on loopback, no setup
linkctl init                          # write a first config
linkctl import\-fetchmailrc \-o /etc/linkctl/linkctl.yaml
linkctl check
linkctl etrn \-v mail.isp.example example.org
linkctl up \-\-no\-wait ppp0            # from a connection script
.fi
.SH SEE ALSO
fetchmail(1), postqueue(1), exim(8), pppd(8), NetworkManager\-dispatcher(8),
systemd.service(5); docs/troubleshooting.md in the source.
`

// genBash writes a bash completion script.
func genBash() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var names []string
	for _, c := range docCommands() {
		names = append(names, c.Name)
	}
	var globals, globalValued []string
	for _, f := range globalDocFlags() {
		globals = append(globals, dash(f.name))
		if !f.isBool {
			globalValued = append(globalValued, dash(f.name))
		}
	}
	w("# bash completion for linkctl.\n")
	w("# Generated from linkctl's command table by: go test ./cmd/linkctl -run TestGeneratedDocs -update-docs\n")
	w("# Install: cp linkctl.bash /usr/share/bash-completion/completions/linkctl\n")
	w("_linkctl() {\n")
	w("\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	w("\tlocal cmds=%q\n", strings.Join(names, " "))
	w("\tlocal globals=%q\n", strings.Join(globals, " "))
	w("\tlocal i cmd=\n")
	w("\tfor ((i = 1; i < COMP_CWORD; i++)); do\n")
	w("\t\tcase \"${COMP_WORDS[i]}\" in\n")
	w("\t\t%s) ((i++)) ;;\n", strings.Join(globalValued, "|"))
	w("\t\t-*) ;;\n")
	w("\t\t*) cmd=\"${COMP_WORDS[i]}\"; break ;;\n")
	w("\t\tesac\n\tdone\n")
	w("\tcase \"$prev\" in\n")
	w("\t--log-format) COMPREPLY=($(compgen -W \"text json\" -- \"$cur\")); return ;;\n")
	valued := map[string]bool{}
	for _, f := range globalDocFlags() {
		if !f.isBool {
			valued[dash(f.name)] = true
		}
	}
	for _, c := range docCommands() {
		for _, f := range c.flags {
			if !f.isBool {
				valued[dash(f.name)] = true
			}
		}
	}
	delete(valued, "--log-format")
	var vs []string
	for k := range valued {
		vs = append(vs, k)
	}
	sort.Strings(vs)
	w("\t%s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(vs, "|"))
	w("\tesac\n")
	w("\tif [[ -z $cmd ]]; then\n")
	w("\t\tif [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$globals\" -- \"$cur\")); else COMPREPLY=($(compgen -W \"$cmds\" -- \"$cur\")); fi\n")
	w("\t\treturn\n\tfi\n")
	w("\tlocal flags=\n\tcase \"$cmd\" in\n")
	for _, c := range docCommands() {
		var fl []string
		for _, f := range c.flags {
			if !isGlobalFlag(f.name) {
				fl = append(fl, dash(f.name))
			}
		}
		if len(fl) > 0 {
			w("\t%s) flags=%q ;;\n", c.Name, strings.Join(fl, " "))
		}
	}
	w("\tesac\n")
	w("\tif [[ $cur == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$flags $globals\" -- \"$cur\"))\n")
	w("\telif [[ $cmd == import-fetchmailrc ]]; then\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n")
	w("}\ncomplete -F _linkctl linkctl\n")
	return b.Bytes()
}

// zq quotes a description for zsh's _arguments and _describe.
func zq(s string) string {
	r := strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`)
	return r.Replace(s)
}

func zspec(f docFlag) string {
	s := "'" + dash(f.name) + "[" + zq(f.usage) + "]"
	if !f.isBool {
		arg := f.arg
		if arg == "" {
			arg = "value"
		}
		action := "_files"
		if f.name == "log-format" {
			action = "(text json)"
		}
		s += ":" + zq(arg) + ":" + action
	}
	return s + "'"
}

// genZsh writes a zsh completion function.
func genZsh() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("#compdef linkctl\n")
	w("# Generated from linkctl's command table by: go test ./cmd/linkctl -run TestGeneratedDocs -update-docs\n")
	w("# Install: cp _linkctl into a directory of $fpath (e.g. /usr/share/zsh/vendor-completions).\n")
	w("_linkctl() {\n\tlocal curcontext=\"$curcontext\" state line\n\tlocal -a cmds globals\n")
	w("\tcmds=(\n")
	for _, c := range docCommands() {
		w("\t\t'%s:%s'\n", c.Name, zq(c.Summary))
	}
	w("\t)\n\tglobals=(\n")
	for _, f := range globalDocFlags() {
		w("\t\t%s\n", zspec(f))
	}
	w("\t)\n")
	w("\t_arguments -C $globals '1:command:->cmd' '*::arg:->args' && return\n")
	w("\tcase $state in\n\tcmd) _describe -t commands 'linkctl command' cmds ;;\n\targs)\n\t\tcase $words[1] in\n")
	for _, c := range docCommands() {
		var specs []string
		for _, f := range c.flags {
			if !isGlobalFlag(f.name) {
				specs = append(specs, zspec(f))
			}
		}
		if c.Name == "import-fetchmailrc" {
			specs = append(specs, "'*:fetchmailrc:_files'")
		}
		if len(specs) > 0 {
			w("\t\t%s) _arguments $globals %s ;;\n", c.Name, strings.Join(specs, " "))
		}
	}
	w("\t\t*) _arguments $globals ;;\n\t\tesac ;;\n\tesac\n}\n_linkctl \"$@\"\n")
	return b.Bytes()
}

// genConfigDoc is the config reference: config/reference.yaml (the file the
// config package embeds and its tests parse) with a short guide around it.
func genConfigDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# linkctl configuration reference

<!-- Generated by: go test ./cmd/linkctl -run TestGeneratedDocs -update-docs
     from config/reference.yaml; edit that file, not this one. -->

One YAML file: ` + "`-c FILE`" + `, else ` + "`$LINKCTL_CONFIG`" + `, else ` + "`/etc/linkctl/linkctl.yaml`" + ` for root and
` + "`~/.config/linkctl/linkctl.yaml`" + ` for other users. ` + "`linkctl check`" + ` validates it and prints the
effective config; ` + "`linkctl init`" + ` writes a first one; ` + "`linkctl import-fetchmailrc`" + ` converts a
` + "`.fetchmailrc`" + `; ` + "`scripts/examples/`" + ` has configs for dial-up with Postfix, LTE with Exim, an
on-demand VPN with IMAP only, and an ETRN-only site.

Below, every key with its default and meaning.

` + "```yaml\n")
	b.Write(config.Reference)
	if !bytes.HasSuffix(config.Reference, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("```\n")
	return b.Bytes()
}

func TestGeneratedDocs(t *testing.T) {
	files := map[string][]byte{
		"../../docs/linkctl.1":                genMan(),
		"../../docs/completions/linkctl.bash": genBash(),
		"../../docs/completions/_linkctl":     genZsh(),
		"../../docs/configuration.md":         genConfigDoc(),
	}
	for path, want := range files {
		if *updateDocs {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the command table generates (a command or flag changed?): run\n"+
				"\tgo test ./cmd/linkctl -run TestGeneratedDocs -update-docs", path)
		}
	}
}

// The man page renders without warnings, and bash accepts the completion
// script and completes commands and flags with it.
func TestGeneratedDocsWork(t *testing.T) {
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = bytes.NewReader(genMan())
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := string(genBash()) + `
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _linkctl; echo "${COMPREPLY[*]}"; }
complete_words linkctl d
complete_words linkctl -v demo --f
complete_words linkctl --log-format j
`
	cmd := exec.Command(bash, "--norc", "--noprofile")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"daemon down demo dial", "--fast", "json"}
	if len(lines) != len(want) {
		t.Fatalf("bash completions: %q", lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("completion %d = %q, want %q", i, lines[i], want[i])
		}
	}
}
