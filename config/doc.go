// Package config reads linkctl's YAML file into a validated, typed Config.
//
// The flow has three steps, so that one run of `linkctl check` shows every
// problem in the file at once, each with the line to fix:
//
//  1. Raw. The file is parsed into a yaml.Node tree (syntax errors stop
//     here, with their line), and decodeStruct walks that tree into the raw
//     structs of raw.go. Each leaf stays the *yaml.Node it was written as,
//     so it keeps its line. Every mapping is checked against the keys its
//     raw struct declares: an unknown key at any depth is reported with its
//     line, its path and the keys expected there. The yaml package's own
//     strict mode cannot do this: it stops at the first bad value and
//     loses KnownFields below custom unmarshalers.
//  2. Validate. validate.go turns each raw value into its typed form
//     (durations, sizes, argv lists, host:port, TLS modes, secrets; a
//     server's tls_pin decoded and its ca_file read and parsed here, so
//     what `linkctl check` accepted is what the dialers use, tlstrust.go;
//     the dial section's times of day and windows, dial.go; link.policies,
//     with metered/budget/max_message beside watch as a last policy
//     matching "*"),
//     applies the defaults (DESIGN.md and reference.yaml), and checks the
//     rules between keys (one delivery target, unique account names,
//     multidrop needs an envelope header, drop comes last...). A problem is
//     recorded and validation goes on with the default, so later problems
//     are found too.
//  3. Typed. With no problem the result is a *Config (types.go): TLS
//     mode, protocol and auth as types (TLS mode and auth are the stages'
//     own, netconn.TLSMode and authmech.Mech, parsed here once), every
//     server a resolved host:port that the stages take as it is,
//     durations and sizes as numbers, every default applied (the Default*
//     constants and DefaultPort live here and nowhere else). Package
//     assemble translates it into each stage's own options; stages never
//     import this package. Otherwise the problems come back as Errors,
//     sorted by line and classified errkind.Usage (exit 5).
//
// The one-off commands (`linkctl fetch --server`, `linkctl etrn`) write
// their flags as a config section and validate it the same way
// (OneOffFetch, OneOffETRN, oneoff.go): the command line and a file never
// disagree, and a problem names its flag.
//
// Paths (paths.go) mean the same file to `linkctl check` and to the daemon
// under systemd: relative ones are taken from the config's directory, and
// "~" is the home of the file's owner in the passwd database ($HOME is
// never read); in a root-owned config "~" is a problem, with a hint to
// write the absolute path. Warnings flag a system config naming a file
// under /root or /home, which the shipped unit hides.
//
// Load adds the file-level checks: a file that holds an inline password
// must not be readable by group or others (errkind.Permission, exit 6,
// with the chmod that fixes it). Secrets are read only when a stage needs
// them, through Secret.Get, and never appear in errors or in Redacted.
//
// minimal.yaml and reference.yaml are embedded as Minimal and Reference;
// reference.yaml documents every key with its default and is parsed by the
// tests, so it cannot drift from the code.
package config
