package main

import (
	"context"
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/site"
)

// siteVerifyOutput is `offkit verify --root ROOT --json`
// (schemas/output/site-verify.schema.json).
type siteVerifyOutput struct {
	Root string `json:"root"`
	*site.SiteCheck
	OK bool `json:"ok"`
}

// siteVerify is `offkit verify --root ROOT`: every installed byte of the
// current generation against the active kits' manifests. It takes the
// site lock, as mirror verify does: no install switches the generation
// while it is read, and the audit line is written under it.
func (a *app) siteVerify(ctx context.Context, root string) error {
	s, err := site.Open(root, false)
	if err != nil {
		return err
	}
	defer s.Close()
	now := a.now()
	c, err := site.NewView(root).Check(ctx)
	if err == nil {
		err = c.Err()
	}
	fields := map[string]any{"exitCode": errdef.ExitCode(err)}
	if c != nil {
		fields["generation"], fields["kits"], fields["files"], fields["bytes"], fields["mismatches"] =
			c.Generation, len(c.Kits), c.Files, c.Bytes, c.Mismatches
	}
	if err != nil {
		fields["error"] = err.Error()
	}
	if aerr := s.Audit(now, "site-verify", fields); aerr != nil {
		return aerr
	}
	if err != nil {
		// Nothing on stdout (with --json, the error object): the message
		// names the problems, up to a bound.
		return err
	}
	return a.emit(siteVerifyOutput{Root: root, SiteCheck: c, OK: c.OK()}, func(w io.Writer) {
		fmt.Fprintf(w, "site %s: generation %d: %d kits, %d files, %d bytes, every sha256 and size matches\n", root, c.Generation, len(c.Kits), c.Files, c.Bytes)
		for _, k := range c.Kits {
			fmt.Fprintf(w, "  %-24s %-12s ok  %d files, %d blobs, %d bytes\n", k.Name, k.Version, k.Files, k.Blobs, k.Bytes)
		}
		if c.MirrorExports > 0 {
			fmt.Fprintf(w, "  mirror: %d exports, %d files of retained ones match exports.json; signatures: run offkit mirror verify\n", c.MirrorExports, c.MirrorRetained)
		}
	})
}
