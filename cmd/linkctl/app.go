package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/linkctl/linkctl/assemble"
	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/exitcode"
	"github.com/linkctl/linkctl/internal/logx"
)

// command is one subcommand. Each lives in its own file and registers
// itself from init() with register. Setup declares the subcommand's flags on
// fs and returns the function that runs it once the flags are parsed.
type command struct {
	Name    string
	Args    string // synopsis of the arguments, for usage
	Summary string // one line for `linkctl --help`
	Help    string // paragraphs for `linkctl CMD --help`
	Setup   func(fs *flag.FlagSet) func(a *App, args []string) error
	Hidden  bool // internal helpers (not listed)
}

var commands = map[string]*command{}

// register adds a subcommand.
func register(c *command) { commands[c.Name] = c }

// commandOrder is the order of DESIGN.md's command line, for --help.
var commandOrder = []string{"daemon", "up", "down", "run", "etrn", "fetch", "flush", "status", "quit",
	"plan", "history", "check", "import-fetchmailrc", "init", "demo", "version"}

// Commands returns the visible subcommands in help order (for completions
// and the man page).
func Commands() []*command {
	var out []*command
	seen := map[string]bool{}
	for _, n := range commandOrder {
		if c, ok := commands[n]; ok && !c.Hidden {
			out = append(out, c)
			seen[n] = true
		}
	}
	var rest []string
	for n, c := range commands {
		if !seen[n] && !c.Hidden {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		out = append(out, commands[n])
	}
	return out
}

// App is what every subcommand gets: the global options, the streams, the
// logger, and the config (loaded on first use).
type App struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    *slog.Logger

	ConfigPath string
	Verbose    int    // 0 info, 1 debug (-v), 2 protocol transcripts (-vv)
	LogFormat  string // text | json

	cfg *config.Config
	asm *assemble.Assembler // see assembler()
}

// globalFlags are accepted before the subcommand and after it.
type globalFlags struct {
	config    string
	v, vv     bool
	logFormat string
	help      bool
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "c", g.config, "config `file` (default $LINKCTL_CONFIG, else "+config.DefaultPath()+")")
	fs.StringVar(&g.config, "config", g.config, "config `file` (same as -c)")
	fs.BoolVar(&g.v, "v", g.v, "verbose: debug logging")
	fs.BoolVar(&g.vv, "vv", g.vv, "very verbose: protocol transcripts (secrets shown as ***)")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log format: text or json")
	fs.BoolVar(&g.help, "h", false, "show help")
	fs.BoolVar(&g.help, "help", false, "show help")
}

// Main runs linkctl with args and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "-V") {
		args = []string{"version"} // the GNU convention, as fetchmail --version
	}
	g := &globalFlags{logFormat: "text"}
	top := flag.NewFlagSet("linkctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	if err := top.Parse(args); err != nil {
		fmt.Fprintf(stderr, "linkctl: %v\n", err)
		usage(stderr)
		return int(errkind.Usage)
	}
	if top.NArg() == 0 {
		usage(stderr)
		if g.help {
			return 0
		}
		return int(errkind.Usage)
	}
	name, rest := top.Arg(0), top.Args()[1:]
	if name == "help" {
		if len(rest) == 0 {
			usage(stdout)
			return 0
		}
		name, rest = rest[0], []string{"--help"}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "linkctl: unknown command %q\n", name)
		usage(stderr)
		return int(errkind.Usage)
	}

	fs := flag.NewFlagSet("linkctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	run := cmd.Setup(fs)
	positional, err := parseInterleaved(fs, rest)
	if g.help {
		commandUsage(stdout, cmd, fs)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "linkctl %s: %v\n", name, err)
		commandUsage(stderr, cmd, fs)
		return int(errkind.Usage)
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		fmt.Fprintf(stderr, "linkctl: --log-format %q: expected text or json\n", g.logFormat)
		return int(errkind.Usage)
	}

	a := &App{Ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr, LogFormat: g.logFormat, ConfigPath: g.config}
	switch {
	case g.vv:
		a.Verbose = 2
	case g.v:
		a.Verbose = 1
	}
	if a.ConfigPath == "" {
		a.ConfigPath = os.Getenv("LINKCTL_CONFIG")
	}
	if a.ConfigPath == "" {
		a.ConfigPath = config.DefaultPath()
	}
	termLog.w, termLog.verbose = stderr, a.Verbose
	termLog.level.Set(a.level())
	a.Log = newLogger(&termLog, &termLog.level, a.LogFormat)

	err = run(a, positional)
	return a.exit(name, err)
}

// exit prints err (unless a command already reported it) and maps it to the
// exit status.
func (a *App) exit(name string, err error) int {
	if err == nil {
		return 0
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, e := range ce {
			fmt.Fprintln(a.Stderr, e)
		}
		return int(errkind.Usage)
	}
	fmt.Fprintf(a.Stderr, "linkctl %s: %v\n", name, err)
	code := errkind.ExitCode(err)
	if code == 0 {
		code = int(errkind.Internal)
	}
	return code
}

// exitStatus is an error for a command that has already told the user what
// happened and only needs its exit status passed on.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func (a *App) level() slog.Level {
	switch a.Verbose {
	case 0:
		return slog.LevelInfo
	case 1:
		return slog.LevelDebug
	}
	return logx.LevelTrace
}

// Trace reports whether protocol transcripts are wanted (-vv).
func (a *App) Trace() bool { return a.Verbose >= 2 }

// Config loads the config file on first use. Config errors come back as
// config.Errors (each "FILE:LINE: key: what"), permission problems as
// errkind.Permission.
func (a *App) Config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	cfg, err := config.Load(a.ConfigPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errkind.Permanent(errkind.Usage, "",
				"no config at %s: write one (linkctl init, or see config/reference.yaml), or name it with -c FILE", a.ConfigPath)
		}
		return nil, err
	}
	a.cfg = cfg
	a.Log = withConfigLog(a.Log, &termLog, &termLog.level, a.LogFormat, cfg.Log)
	return cfg, nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments (`linkctl etrn mail.example.net example.org -v`);
// "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `linkctl: mail chores for a host whose uplink comes and goes

Usage: linkctl [-c FILE] [-v|-vv] [--log-format text|json] COMMAND [ARGS]

Commands:
`)
	for _, c := range Commands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, "\nRun 'linkctl COMMAND --help' for a command's flags.\n")
	fmt.Fprint(w, exitcode.Help(80))
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: linkctl %s", c.Name)
	if c.Args != "" {
		fmt.Fprintf(w, " %s", c.Args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains([]string{"h", "help"}, f.Name) {
			return
		}
		name, use := flag.UnquoteUsage(f)
		dash := "-"
		if len(f.Name) > 1 {
			dash = "--"
		}
		line := "  " + dash + f.Name
		if name != "" {
			line += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			use += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%-28s %s\n", line, use)
	})
}
