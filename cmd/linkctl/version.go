package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// version is set by the package build (-ldflags -X main.version=...); a
// plain `go build` leaves it empty and the module's build info is used.
var version string

func init() {
	register(&command{
		Name:    "version",
		Summary: "print linkctl's version and the versions of its libraries",
		Setup: func(*flag.FlagSet) func(*App, []string) error {
			return func(a *App, _ []string) error {
				bi, ok := debug.ReadBuildInfo()
				if version != "" {
					fmt.Fprintf(a.Stdout, "linkctl %s", version)
					if ok {
						fmt.Fprintf(a.Stdout, " (%s)", bi.GoVersion)
					}
					fmt.Fprintln(a.Stdout)
					return nil
				}
				if !ok {
					fmt.Fprintln(a.Stdout, "linkctl (unknown build)")
					return nil
				}
				v := bi.Main.Version
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						v += " " + s.Value[:12]
					}
				}
				fmt.Fprintf(a.Stdout, "linkctl %s (%s)\n", v, bi.GoVersion)
				if a.Verbose > 0 {
					for _, d := range bi.Deps {
						fmt.Fprintf(a.Stdout, "  %s %s\n", d.Path, d.Version)
					}
				}
				return nil
			}
		},
	})
}
