package main

import (
	"github.com/linkctl/linkctl/assemble"
	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/pipeline"
)

// assembler is the process's one assemble.Assembler, made on first use
// (after the config, so that its stages log where the config says).
func (a *App) assembler() *assemble.Assembler {
	if a.asm == nil {
		a.asm = assemble.New(a.Log)
	}
	return a.asm
}

// BuildSteps is the config's pipeline as runner steps (only the named
// stages when only is not empty).
func (a *App) BuildSteps(cfg *config.Config, only []string) ([]pipeline.Step, error) {
	return a.assembler().Steps(cfg, only)
}

// RunLockPath is the flock that keeps runs apart.
func RunLockPath(cfg *config.Config) string { return assemble.RunLockPath(cfg) }
