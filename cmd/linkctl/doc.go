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
//     A real command replaces the placeholder of the same name in stubs.go.
//
//   - App gives a subcommand: Ctx (cancelled on SIGINT/SIGTERM), Stdin/Stdout/
//     Stderr, Log (*slog.Logger; logx.LevelTrace with -vv for transcripts),
//     Config() (loaded on first use; errors already carry their exit status),
//     RunPipeline(RunOptions) (the configured pipeline once, with progress and
//     summary), BuildSteps, and newRenderer(w, log).Sink for progress.
//
//   - A pipeline stage is built from the config by a stageBuilder that its
//     subcommand file registers: registerStage("fetch", buildFetchStage).
//     The builder translates config.Config into the stage package's own
//     Options and returns a pipeline.Stage (usually a pipeline.Func), so that
//     stage packages never import config.
//
//   - Errors: return an error classified with errkind; Main prints it once
//     as "linkctl CMD: ..." and exits with its status. A command that has
//     already printed what happened returns exitStatus(code).

package main
