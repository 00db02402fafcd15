package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// SecretCommandTimeout bounds a password_command: a helper that waits for
// a passphrase nobody will type must not hold the link open.
const SecretCommandTimeout = 30 * time.Second

// maxSecret bounds what is read from a password file or command.
const maxSecret = 64 << 10

// Get returns the secret: the inline text; the first line of the file
// (which must not be readable by group or others); or the first line a
// command prints (argv, no shell, 30 s at most). It is read at each call,
// so a password_command can hand out fresh OAuth2 tokens. No error ever
// contains the secret.
func (s Secret) Get(ctx context.Context) (string, error) {
	switch {
	case s.Inline != "":
		return s.Inline, nil
	case s.File != "":
		return s.fromFile()
	case len(s.Command) > 0:
		return s.fromCommand(ctx)
	}
	return "", errkind.Permanent(errkind.Usage, "", "no password configured (expected password_file, password_command or password)")
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSuffix(string(b), "\r")
}

func (s Secret) fromFile() (string, error) {
	f, err := os.Open(s.File)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", errkind.Permanent(errkind.Usage, "", "password_file %s does not exist (expected a file holding the password, mode 0600)", s.File)
		case errors.Is(err, fs.ErrPermission):
			return "", errkind.Permanent(errkind.Permission, "", "password_file %s: permission denied (run linkctl as the user owning it)", s.File)
		}
		return "", errkind.WrapPermanent(errkind.Usage, "cannot read password_file "+s.File, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", errkind.WrapPermanent(errkind.Internal, "cannot stat password_file "+s.File, err)
	}
	if !fi.Mode().IsRegular() {
		return "", errkind.Permanent(errkind.Usage, "", "password_file %s is not a regular file", s.File)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return "", errkind.Permanent(errkind.Permission, "",
			"password_file %s is readable by group/others (mode %04o); run: chmod 600 %s", s.File, perm, s.File)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret))
	if err != nil {
		return "", errkind.WrapPermanent(errkind.Usage, "cannot read password_file "+s.File, err)
	}
	pw := firstLine(b)
	if pw == "" {
		return "", errkind.Permanent(errkind.Usage, "", "password_file %s: the first line is empty (expected the password on it)", s.File)
	}
	return pw, nil
}

// limitedBuffer keeps the first n bytes written and drops the rest, so a
// chatty command cannot fill memory.
type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.n - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (s Secret) fromCommand(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, SecretCommandTimeout)
	defer cancel()
	name := s.Command[0]
	cmd := exec.CommandContext(ctx, name, s.Command[1:]...)
	cmd.WaitDelay = 2 * time.Second // a grandchild holding stdout open must not hang us
	stdout := &limitedBuffer{n: maxSecret}
	stderr := &limitedBuffer{n: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	pw := firstLine(stdout.Bytes())
	if err != nil {
		// The command may have printed (part of) the secret before failing,
		// and a helper may echo it on stderr: scrub it from what we quote.
		msg := quoteStderr(stderr.String(), pw)
		var ee *exec.ExitError
		switch {
		case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
			return "", errkind.Permanent(errkind.Usage, "", "password_command %s: program not found (expected an installed program; argv form, no shell)", name)
		case ctx.Err() == context.DeadlineExceeded && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
			return "", errkind.Temporary(errkind.Auth, "", "password_command %s: no answer within %s%s", name, SecretCommandTimeout, msg)
		case errors.As(err, &ee):
			// Exit 75 (EX_TEMPFAIL) means "try again later", as for an MDA.
			return "", errkind.New(errkind.Auth, ee.ExitCode() == 75, "", "password_command %s failed: %s%s", name, ee.ProcessState.String(), msg)
		}
		return "", errkind.Temporary(errkind.Auth, "", "password_command %s: %s%s", name, scrub(err.Error(), pw), msg)
	}
	if pw == "" {
		return "", errkind.Permanent(errkind.Auth, "", "password_command %s printed nothing on its first line (expected the password on stdout)%s", name, quoteStderr(stderr.String(), ""))
	}
	return pw, nil
}

func scrub(s, secret string) string {
	if len(secret) >= 1 {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

func quoteStderr(stderr, secret string) string {
	t := strings.TrimSpace(scrub(stderr, secret))
	if t == "" {
		return ""
	}
	if len(t) > 500 {
		t = t[:500] + "..."
	}
	return fmt.Sprintf("; stderr: %q", t)
}

// CheckSecretFiles opens every password_file the config names, as `linkctl
// check` should before a run needs them: a missing file is errkind.Usage,
// one readable by group or others errkind.Permission (exit 6) with the
// chmod that fixes it. Commands are not run. The errors are joined, the
// first one's kind wins; no secret is in them.
func (c *Config) CheckSecretFiles() error {
	var errs []error
	check := func(where string, s Secret) {
		if s.File == "" {
			return
		}
		if _, err := s.fromFile(); err != nil {
			errs = append(errs, errkind.WrapPermanent(errkind.KindOf(err), where, err))
		}
	}
	for _, s := range c.ETRN.Servers {
		check("etrn server "+s.Server, s.Password)
	}
	for _, a := range c.Fetch.Accounts {
		check("account "+a.Name, a.Password)
	}
	if len(errs) == 0 {
		return nil
	}
	return errkind.WrapPermanent(errkind.KindOf(errs[0]), "", errors.Join(errs...))
}

// Account returns the account called name.
func (c *Config) Account(name string) (Account, bool) {
	for _, a := range c.Fetch.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}
