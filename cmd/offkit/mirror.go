package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/mirror"
	"github.com/offkit/offkit/site"
)

func (a *app) mirrorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mirror", Short: "Feed-mirror exports installed on a site"}
	cmd.AddCommand(a.mirrorVerifyCmd())
	return cmd
}

// mirrorVerifyOutput is `offkit mirror verify --json`
// (schemas/output/mirror-verify.schema.json).
type mirrorVerifyOutput struct {
	Root string `json:"root"`
	*site.MirrorCheck
	OK bool `json:"ok"`
}

// mirrorKeys reads the trusted keys of the mirror signatures: the --key
// arguments (PATH, or ID=PATH to name a PEM key as kit.yaml's {path, id}
// does), else every file in ROOT/keys/mirror/ (JWK, JWKS or PEM each; a PEM
// key is named by its file's name without the extension).
func mirrorKeys(root string, args []string) (*mirror.KeySet, error) {
	type keyFile struct{ path, id string }
	var files []keyFile
	for _, a := range args {
		kf := keyFile{path: a}
		if _, err := os.Stat(a); err != nil {
			if id, p, ok := strings.Cut(a, "="); ok && id != "" {
				kf = keyFile{path: p, id: id}
			}
		}
		files = append(files, kf)
	}
	if len(args) == 0 {
		dir := filepath.Join(root, "keys", "mirror")
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, keyFile{path: filepath.Join(dir, e.Name()), id: strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))})
			}
		}
	}
	set := &mirror.KeySet{}
	add := set.AddFile
	if len(args) == 0 {
		// The site's files: one swapped for a named pipe since the
		// listing is refused, not waited on.
		add = set.AddRegularFile
	}
	for _, kf := range files {
		// A JWK in ROOT/keys/mirror/ names itself, not by its file name.
		if err := add(kf.path, kf.id, len(args) == 0); err != nil {
			return nil, fmt.Errorf("mirror key: %w", err)
		}
	}
	return set, nil
}

func (a *app) mirrorVerifyCmd() *cobra.Command {
	var root string
	var keyPaths []string
	cmd := &cobra.Command{
		Use:   "verify --root ROOT [--key mirror.jwk] [--key ID=mirror.pem]",
		Short: "Re-check every installed feed-mirror file, active and retained, and every signature",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			keys, err := mirrorKeys(root, keyPaths)
			if err != nil {
				return err
			}
			// The lock: no install switches the generation while it is
			// read, and the audit line is written under it.
			s, err := site.Open(root, false)
			if err != nil {
				return err
			}
			defer s.Close()
			now := a.now()
			c, err := site.NewView(root).CheckMirror(cmd.Context(), keys)
			if err == nil {
				err = c.Err()
			}
			fields := map[string]any{"exitCode": errdef.ExitCode(err)}
			if c != nil {
				fields["generation"], fields["exports"], fields["files"], fields["bytes"], fields["signatures"], fields["problems"] =
					c.Generation, len(c.Exports), c.Files, c.Bytes, c.Signatures, len(c.Problems)
			}
			if err != nil {
				fields["error"] = err.Error()
			}
			if aerr := s.Audit(now, "mirror-verify", fields); aerr != nil {
				return aerr
			}
			if err != nil {
				// Nothing on stdout (with --json, the error object): the
				// message names every problem, up to a bound.
				return err
			}
			out := mirrorVerifyOutput{Root: root, MirrorCheck: c, OK: c.OK()}
			return a.emit(out, func(w io.Writer) { printMirrorCheck(w, root, c) })
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted key of the exports' signatures: a JWK, JWKS or PEM file, or ID=FILE to name a PEM key (repeatable; default every file in ROOT/keys/mirror/, a PEM key named by its file name without extension)")
	return cmd
}

// printMirrorCheck writes mirror verify's text output.
func printMirrorCheck(w io.Writer, root string, c *site.MirrorCheck) {
	fmt.Fprintf(w, "site %s: generation %d: %d exports, %d files, %d bytes, %d signatures\n", root, c.Generation, len(c.Exports), c.Files, c.Bytes, c.Signatures)
	for _, e := range c.Exports {
		var flags string
		if e.Latest {
			flags += " latest"
		}
		if e.Retained {
			flags += " retained"
		}
		fmt.Fprintf(w, "  %-9s %-20s ok  %s %s, %d files, %d signatures%s\n", e.Kind, e.ExportID, e.Kit, e.KitVersion, e.Files, e.Signatures, flags)
	}
	fmt.Fprintln(w, "every file matches exports.json and the kit manifests; every signature verifies with a trusted key")
}
