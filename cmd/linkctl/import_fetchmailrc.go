package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/config/fetchmailrc"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "import-fetchmailrc",
		Args:    "[-o OUT] [--secret-dir DIR] [FILE]",
		Summary: "print the linkctl.yaml equivalent of a .fetchmailrc, with warnings",
		Help: `Reads FILE (default ~/.fetchmailrc; - for standard input) and writes the linkctl.yaml
that does the same job: accounts for POP3/IMAP entries, ETRN relays for proto etrn,
delivery from smtphost/lmtp/mda, set daemon as link.interval. Every option linkctl
cannot express becomes a "# fetchmail" comment in the YAML and a warning on stderr.

Passwords are written only where you say: with -o OUT the file is created mode 0600
and holds them inline; with --secret-dir DIR each goes into its own file in DIR
(mode 0600) and the YAML names it (also with -o). With neither, nothing is written:
the YAML is printed with password_file paths in the default config directory, and
stderr lists the files that were not written.
The result is checked with the same validation as linkctl check.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			out := fs.String("o", "", "write the config to `file` (mode 0600) instead of standard output")
			secretDir := fs.String("secret-dir", "", "write each password into its own file (mode 0600) in `dir`")
			force := fs.Bool("force", false, "overwrite OUT and password files that exist")
			return func(a *App, args []string) error {
				if len(args) > 1 {
					return errkind.Permanent(errkind.Usage, "", "import-fetchmailrc takes at most one FILE")
				}
				file := ""
				if len(args) == 1 {
					file = args[0]
				}
				return a.importFetchmailrc(file, *out, *secretDir, *force)
			}
		},
	})
}

func (a *App) importFetchmailrc(file, out, secretDir string, force bool) error {
	var data []byte
	var err error
	switch file {
	case "-":
		file = "(stdin)"
		data, err = io.ReadAll(io.LimitReader(a.Stdin, 16<<20))
	case "":
		home, herr := os.UserHomeDir()
		if herr != nil {
			return errkind.WrapPermanent(errkind.Usage, "cannot find ~/.fetchmailrc (name the file)", herr)
		}
		file = filepath.Join(home, ".fetchmailrc")
		fallthrough
	default:
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return errkind.WrapPermanent(errkind.Usage, "cannot read "+file, err)
	}
	rc, err := fetchmailrc.Parse(file, data)
	if err != nil {
		return err
	}

	// Secrets go only where the user said (issue 18): -o FILE holds them
	// inline (the file is created 0600), --secret-dir DIR gets one 0600
	// file per password. With neither, nothing is written at all: the
	// printed YAML names the files linkctl's default config directory
	// would hold, and stderr says how to have them written.
	dryRun := out == "" && secretDir == ""
	opts := fetchmailrc.Options{InlineSecrets: out != "" && secretDir == "", SecretDir: secretDir, LocalUser: localUser(), Hostname: hostname()}
	switch {
	case opts.SecretDir != "":
	case out != "":
		opts.SecretDir = filepath.Dir(out) // beside the config
	default:
		opts.SecretDir = filepath.Dir(config.DefaultPath())
	}
	if abs, err := filepath.Abs(opts.SecretDir); err == nil {
		opts.SecretDir = abs
	}
	res, err := fetchmailrc.Convert(rc, opts)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: warning: %s\n", w)
	}
	name := out
	if name == "" {
		name = filepath.Join(opts.SecretDir, "linkctl.yaml")
	}
	var verr error
	if dryRun {
		// The same validation as `linkctl check`, on the same config with
		// the passwords inline, since their files do not exist yet.
		inline := opts
		inline.InlineSecrets = true
		if ires, err := fetchmailrc.Convert(rc, inline); err == nil {
			_, verr = config.Parse(name, ires.YAML)
		}
		if len(res.Secrets) > 0 {
			fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: nothing written; the config names %d password file(s) not written:\n", len(res.Secrets))
			for _, p := range sortedKeys(res.Secrets) {
				fmt.Fprintf(a.Stderr, "  %s\n", p)
			}
			fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: to write them, run again with -o FILE (the config, mode 0600, with the passwords in it) or --secret-dir DIR (one 0600 file per password in DIR)\n")
		}
	} else {
		if err := writeSecrets(res.Secrets, force); err != nil {
			return err
		}
		for _, p := range sortedKeys(res.Secrets) {
			fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: wrote password file %s (mode 0600)\n", p)
		}
		// The same validation as `linkctl check`, so that a config that
		// would not load is reported now and not at the first link-up.
		_, verr = config.Parse(name, res.YAML)
	}

	if out == "" {
		if _, err := a.Stdout.Write(res.YAML); err != nil {
			return errkind.WrapPermanent(errkind.Internal, "cannot write the config", err)
		}
	} else {
		if err := writeFile0600(out, res.YAML, force); err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: wrote %s (mode 0600); check it with: linkctl -c %s check\n", out, out)
	}
	if verr != nil {
		fmt.Fprintf(a.Stderr, "linkctl import-fetchmailrc: the converted config does not pass validation yet; edit it:\n%v\n", verr)
		return exitStatus(errkind.Usage)
	}
	return nil
}

// writeFile0600 creates path with mode 0600 (it holds passwords). An
// existing file is replaced only with force, and then through a temporary
// file so the old one is never half-written.
func writeFile0600(path string, data []byte, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return errkind.Permanent(errkind.Usage, "", "%s exists: remove it or use --force", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".linkctl-import-*")
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	if err := tmp.Close(); err != nil {
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errkind.WrapPermanent(errkind.Internal, "cannot write "+path, err)
	}
	return nil
}

func writeSecrets(secrets map[string]string, force bool) error {
	for _, p := range sortedKeys(secrets) {
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(bytes.TrimRight(old, "\r\n"), []byte(secrets[p])) {
			continue // the same password is already there
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errkind.WrapPermanent(errkind.Permission, "cannot read the password file "+p, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return errkind.WrapPermanent(errkind.Internal, "cannot create "+filepath.Dir(p)+" (choose another with --secret-dir)", err)
		}
		if err := writeFile0600(p, []byte(secrets[p]+"\n"), force); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// localUser is who fetchmail would deliver to: the user running it.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return "postmaster"
}

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
