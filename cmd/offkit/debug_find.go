package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/site"
)

// debugFindOutput is `offkit debug find --json`.
type debugFindOutput struct {
	BuildID    string `json:"buildId"`
	Debuginfo  string `json:"debuginfo,omitempty"`
	Executable string `json:"executable,omitempty"`
}

func (a *app) debugFindCmd() *cobra.Command {
	var root string
	c := &cobra.Command{
		Use:   "find ID --root ROOT",
		Short: "Print the paths of the installed debug file (and executable) of a build id",
		Long: `Print the path of the debug file of build id ID in the generation being
served (GEN/debug/.build-id/<aa>/<rest>.debug), and on a second line the
executable's (GEN/debug/.build-id/<aa>/<rest>) when the kits carry it. The
site is read without a lock, as offkit serve reads it.

ID is 16 to 128 hex digits, an even number (8 to 64 bytes); upper case is
read as lower. gdb reads the same tree: set debug-file-directory
ROOT/current/debug.

Exit codes: 1 no file for ID (or nothing installed), 11 ID is not a build id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			id, err := debugstore.ParseID(args[0])
			if err != nil {
				return fmt.Errorf("debug find: %w", err)
			}
			if err := checkSite(root); err != nil {
				return err
			}
			view := site.NewView(root)
			gen, _, err := view.OpenGeneration()
			if err != nil {
				return err
			}
			defer gen.Close()
			dir := gen.Name()
			out := debugFindOutput{BuildID: id}
			for _, k := range []debugstore.Kind{debugstore.KindDebuginfo, debugstore.KindExecutable} {
				f, _, name, err := debugstore.Open(gen, id, k)
				if errors.Is(err, errdef.ErrNotFound) {
					continue
				}
				if err != nil {
					return fmt.Errorf("debug find: %s: %w", filepath.Join(dir, filepath.FromSlash(name)), err)
				}
				f.Close()
				p := filepath.Join(dir, filepath.FromSlash(name))
				if k == debugstore.KindDebuginfo {
					out.Debuginfo = p
				} else {
					out.Executable = p
				}
			}
			if out.Debuginfo == "" && out.Executable == "" {
				return fmt.Errorf("debug find: build id %s: no %s in %s: %w", id, debugstore.DebugPath(id), dir, errdef.ErrNotFound)
			}
			return a.emit(out, func(w io.Writer) {
				for _, p := range []string{out.Debuginfo, out.Executable} {
					if p != "" {
						fmt.Fprintln(w, p)
					}
				}
			})
		},
	}
	c.Flags().StringVar(&root, "root", "", "site root")
	return c
}
