package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/debugstore/fetch"
	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/kitfile"
)

// debugFetchOutput is `offkit debug fetch --json`
// (schemas/output/debug-fetch.schema.json).
type debugFetchOutput struct {
	fetch.Result
	Output string `json:"output"`
	From   string `json:"from"`
	// KitBytesRead and KitSize: the compressed bytes of the kit read, of
	// its size.
	KitBytesRead int64 `json:"kitBytesRead,omitempty"`
	KitSize      int64 `json:"kitSize,omitempty"`
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (a *app) debugFetchCmd() *cobra.Command {
	var root, from, out string
	var keyPaths []string
	var executable bool
	var plainHTTP bool
	c := &cobra.Command{
		Use:   "fetch ID -o OUT (--root ROOT | --from K.kit.tar.zst --key cosign.pub | --from oci://HOST/REPO:TAG)",
		Short: "Rehydrate the debug file of one build id from the site, a kit file or a registry",
		Long: `Write the debug file of build id ID (its executable with --executable) to OUT,
from one of:

  --root ROOT             the generation the site serves (ROOT/current/debug)
  --from K.kit.tar.zst    a kit file: the manifest's signature is checked first
                          (--key); the seek table locates the frames holding the
                          entry and only those are read and decoded; a kit without
                          a seek table (recompressed by stock zstd) is decoded
                          from the start up to the entry
  --from oci://HOST/REPO:TAG  the debug store artifact offkit push publishes: the
                          layer annotated with the build id is fetched by digest

The bytes are checked (against the signed manifest's size and sha256, or the
layer's digest) and the file's own GNU build id must be ID, before OUT is
replaced, atomically: OUT is never left half written.

Exit codes: 1 no file for ID, 2 bytes that do not match, 5 bad signature,
9 kit expired, 11 bad ID or malformed input, 12 I/O.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("debug fetch: -o OUT is required")
			}
			if (root == "") == (from == "") {
				return usageError("debug fetch: give one of --root ROOT and --from SOURCE")
			}
			id, err := debugstore.ParseID(args[0])
			if err != nil {
				return fmt.Errorf("debug fetch: %w", err)
			}
			o := fetch.Options{Kind: debugstore.KindDebuginfo, Now: a.now()}
			if executable {
				o.Kind = debugstore.KindExecutable
			}
			res := debugFetchOutput{Output: out}
			err = writeAtomic(out, func(w io.Writer) error {
				var r *fetch.Result
				var err error
				switch {
				case root != "":
					res.From = root
					if err := checkSite(root); err != nil {
						return err
					}
					r, err = fetch.FromSite(cmd.Context(), root, id, o, w)
				case strings.HasPrefix(from, "oci://"):
					res.From = from
					r, err = a.fetchOCI(cmd, strings.TrimPrefix(from, "oci://"), id, o, plainHTTP, w)
				default:
					res.From = from
					if len(keyPaths) == 0 {
						return fmt.Errorf("debug fetch: no trusted key: pass --key cosign.pub: %w", errdef.ErrSignature)
					}
					if o.Keys, err = loadPublicKeys(keyPaths); err != nil {
						return err
					}
					f, size, err := kitfile.Open(from)
					if err != nil {
						return fmt.Errorf("kit %w", err)
					}
					defer f.Close()
					cr := &countingReaderAt{r: f}
					r, err = fetch.FromKit(cmd.Context(), cr, size, from, id, o, w)
					res.KitBytesRead, res.KitSize = cr.n.Load(), size
					if err != nil {
						return err
					}
				}
				if err != nil {
					return err
				}
				res.Result = *r
				return nil
			})
			if err != nil {
				return fmt.Errorf("debug fetch %s: %w", id, err)
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s %s: %s (%d bytes, sha256 %s)\n", res.BuildID, res.Kind, out, res.Size, res.SHA256)
				fmt.Fprintf(w, "  from %s, %s\n", res.From, res.Entry)
				if res.KitSize > 0 {
					how := fmt.Sprintf("%d of %d frames decoded", res.FramesDecoded, res.Frames)
					if !res.Seekable {
						how = "no seek table: decoded from the start"
					}
					fmt.Fprintf(w, "  read %d of the kit's %d bytes (%.2f%%; %s)\n", res.KitBytesRead, res.KitSize, 100*float64(res.KitBytesRead)/float64(res.KitSize), how)
				}
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (replaced atomically)")
	c.Flags().StringVar(&root, "root", "", "site root: fetch from the generation being served")
	c.Flags().StringVar(&from, "from", "", "K.kit.tar.zst, or oci://HOST/REPO:TAG")
	c.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted cosign public key of the kit (repeatable)")
	c.Flags().BoolVar(&executable, "executable", false, "fetch the executable <aa>/<rest> instead of the debug file")
	c.Flags().BoolVar(&plainHTTP, "plain-http", false, "speak plain HTTP to the registry (always so for a loopback registry)")
	return c
}

// writeAtomic writes path through fill (atomicfile.Write): a temporary
// file in path's folder, renamed over path only when fill returns nil (and
// removed otherwise). fill's error is returned as it is; others name -o.
func writeAtomic(path string, fill func(w io.Writer) error) error {
	var fillErr error
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		fillErr = fill(w)
		return fillErr
	})
	switch {
	case fillErr != nil:
		return fillErr
	case err == nil:
		return nil
	case os.IsNotExist(err):
		return fmt.Errorf("-o %s: folder %s: %w", path, filepath.Dir(path), errdef.ErrNotFound)
	}
	return fmt.Errorf("-o %s: %w", path, err)
}
