package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// moduleVersion is one module linked into the binary.
type moduleVersion struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum,omitempty"`
}

// versionOutput is what `offkit version --json` prints
// (schemas/output/version.schema.json).
type versionOutput struct {
	Version   string          `json:"version"`
	GoVersion string          `json:"goVersion"`
	Module    string          `json:"module"`
	Modules   []moduleVersion `json:"modules"`
}

func buildVersion() versionOutput {
	out := versionOutput{Version: version, GoVersion: runtime.Version(), Modules: []moduleVersion{}}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	out.Module = info.Main.Path
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		out.Modules = append(out.Modules, moduleVersion{Path: m.Path, Version: m.Version, Sum: m.Sum})
	}
	return out
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show offkit's version, the Go version and the modules it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := buildVersion()
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "offkit %s (%s)\n", out.Version, out.GoVersion)
				for _, m := range out.Modules {
					fmt.Fprintf(w, "  %-48s %s\n", m.Path, m.Version)
				}
			})
		},
	}
}
