package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/push"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

func (a *app) pushCmd() *cobra.Command {
	var root, to, tmpDir, debugTag string
	var keyPaths []string
	var opts push.Options
	cmd := &cobra.Command{
		Use:   "push --root ROOT|K.kit.tar.zst --key cosign.pub --to HOST/NAMESPACE",
		Short: "Copy every image, signature and referrer of the site (or of a kit) into a registry",
		Long: `Copy every image, signature and referrer of the installed site, or of a
kit verified on the way, into an existing registry (Harbor, Zot, distribution).
Repositories are named as offkit serve names them, under NAMESPACE. With
--root, the .debug files the site serves go too, as one OCI artifact
NAMESPACE/debug-store:TAG (--debug-tag, default latest) with a layer per file
(docs/debug.md). From a kit, layers and configs are uploaded as soon as they
verify, but no manifest or tag before the whole kit verified. Blobs the
registry has are skipped, so a second push uploads nothing. Credentials come
from the docker config (docker login).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (root == "") == (len(args) == 0) {
				return usageError("push needs either --root ROOT or a kit file")
			}
			if to == "" {
				return usageError("--to HOST/NAMESPACE is required")
			}
			if _, err := push.ParseTarget(to); err != nil {
				return err
			}
			store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
			if err != nil {
				return fmt.Errorf("docker config: %w", err)
			}
			opts.To, opts.TempDir = to, tmpDir
			opts.Credential = credentials.Credential(store)
			if !a.json {
				opts.Progress = func(im push.Image) {
					a.log.Info("pushed", "image", im.Reference, "copied", im.Copied, "skipped", im.Skipped, "bytes", im.Bytes)
				}
			}
			var res *push.Result
			if root != "" {
				res, err = push.Site(cmd.Context(), site.NewView(root), opts)
				if err == nil {
					res.Debug, err = pushDebugStore(cmd.Context(), root, debugTag, opts)
				}
			} else {
				if len(keyPaths) == 0 {
					return fmt.Errorf("no trusted key: pass --key cosign.pub: %w", errdef.ErrSignature)
				}
				keys, kerr := loadPublicKeys(keyPaths)
				if kerr != nil {
					return kerr
				}
				p, done := a.progress("verifying")
				res, err = push.Kit(cmd.Context(), args[0], verify.Options{Keys: keys, Progress: p, Now: a.now()}, opts)
				done(err)
			}
			if err != nil {
				return err
			}
			res.Images = orEmpty(res.Images)
			return a.emit(res, func(w io.Writer) { printPush(w, res) })
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root to push the installed images (and debug store) of")
	cmd.Flags().StringVar(&debugTag, "debug-tag", debugstore.ArtifactTag, "tag of the debug store artifact NAMESPACE/debug-store (push --root)")
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted cosign public key, to verify a kit file (repeatable)")
	cmd.Flags().StringVar(&to, "to", "", "target registry HOST or HOST/NAMESPACE")
	cmd.Flags().BoolVar(&opts.PlainHTTP, "plain-http", false, "talk http to the registry (loopback registries)")
	cmd.Flags().IntVar(&opts.Jobs, "jobs", push.DefaultJobs, fmt.Sprintf("parallel uploads (1 to %d)", push.MaxJobs))
	cmd.Flags().StringVar(&opts.Mapping.StripPrefix, "strip-prefix", "", "repository prefix to remove, as offkit serve does (\"stellaops/\")")
	cmd.Flags().BoolVar(&opts.Mapping.KeepHost, "keep-host", false, "keep the source registry host in repository names, as offkit serve does")
	cmd.Flags().StringVar(&tmpDir, "tmp-dir", "", "where a kit's images are extracted while pushing (default: the system temp folder)")
	return cmd
}

func printPush(w io.Writer, res *push.Result) {
	if d := res.Debug; d != nil {
		fmt.Fprintf(w, "%-64s %s  debug store: %d files, copied %d, skipped %d, %d bytes\n", d.Reference, d.Digest[:19], d.Files, d.Copied, d.Skipped, d.Bytes)
	}
	if len(res.Images) == 0 {
		fmt.Fprintf(w, "no images to push to %s\n", res.Registry)
		return
	}
	for _, im := range res.Images {
		fmt.Fprintf(w, "%-64s %s  copied %d, skipped %d, %d bytes\n", im.Reference, im.Digest[:19], im.Copied, im.Skipped, im.Bytes)
	}
	images := "images"
	if len(res.Images) == 1 {
		images = "image"
	}
	fmt.Fprintf(w, "pushed %d %s to %s: %d blobs copied, %d skipped, %d bytes uploaded\n",
		len(res.Images), images, res.Registry, res.Copied, res.Skipped, res.Bytes)
}
