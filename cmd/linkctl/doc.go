// How this command is put together (for whoever adds a subcommand or a stage):
//
//   - main.go calls Main, which parses the global flags (-c/--config, -v, -vv,
//     --log-format; accepted before and after the subcommand), finds the
//     subcommand in the table, parses its flags (interleaved with its
//     arguments) and runs it with an *App.
//
//   - Each subcommand is one file that registers itself from init():
//
//     func init() {
//     register(&command{
//     Name: "etrn", Args: "[flags] HOST[:PORT] DOMAIN...", Summary: "...", Help: `...`,
//     Setup: func(fs *flag.FlagSet) func(*App, []string) error {
//     force := fs.Bool("force", false, "send ETRN even when not advertised")
//     return func(a *App, args []string) error { ... }
//     },
//     })
//     }
//
//   - App gives a subcommand: Ctx (cancelled on SIGINT/SIGTERM), Stdin/Stdout/
//     Stderr, Log (*slog.Logger; logx.LevelTrace with -vv for transcripts),
//     Config() (loaded on first use; errors already carry their exit status),
//     RunPipeline(RunOptions) (the configured pipeline once, with progress and
//     summary), BuildSteps, assembler() and newRenderer(w, log).Sink for
//     progress.
//
//   - Stages are not built here: package assemble turns the validated
//     config.Config into each stage's own Options and pipeline stages (a
//     new stage gets its case in assemble.Stage). The one-off flags of
//     `fetch --server` and `etrn` become a config through config.OneOffFetch
//     and config.OneOffETRN, so they take the config's defaults and checks.
//
//   - Errors: return an error classified with errkind; Main prints it once
//     as "linkctl CMD: ..." and exits with its status. A command that has
//     already printed what happened returns exitStatus(code).

package main
