package kit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// collectMirror checks the feed mirror exports the spec names (package
// mirror: layout, names, every signature verified with the source's keys
// in one streaming read of each file) and returns their files, to pack at
// mirror/<kind>/<exportId>/mirror/…, with the kit manifest's mirror[]
// records sorted by kind then export id. Each file's digest is taken as it
// is verified, and checked again as it is packed.
func collectMirror(ctx context.Context, list []manifest.MirrorSource, dir string, log *slog.Logger) ([]source, []manifest.Mirror, error) {
	var srcs []source
	var recs []manifest.Mirror
	seen := map[string]string{}
	for i, ms := range list {
		field := fmt.Sprintf("spec /mirror/%d", i)
		keys := &mirror.KeySet{}
		for j, k := range ms.Keys {
			if err := keys.AddRegularFile(abs(dir, k.Path), k.ID, false); err != nil {
				return nil, nil, fmt.Errorf("%s/keys/%d %q: %w", field, j, k.Path, err)
			}
		}
		e, err := mirror.Open(ctx, mirror.Source{
			Kind: ms.Kind, Root: abs(dir, ms.Root), ExportID: ms.ExportID, Domains: ms.Domains, Keys: keys,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s (%s export of %s): %w", field, ms.Kind, ms.Root, err)
		}
		id := e.Kind + "/" + e.ID
		if prev, ok := seen[id]; ok {
			return nil, nil, fmt.Errorf("%s: export %s is also carried by %s: %w", field, id, prev, errdef.ErrInvalid)
		}
		seen[id] = field
		for _, f := range e.Files {
			srcs = append(srcs, source{
				entry: manifest.Entry{Path: e.KitPath(f.Rel), Size: f.Size, SHA256: f.SHA256, Role: manifest.RoleMirror},
				file:  f.Abs,
			})
		}
		recs = append(recs, e.Record())
		for _, f := range e.Signed {
			log.Info("mirror file verified", "path", f.Path, "signature", f.Signature.Kind, "alg", f.Signature.Alg, "keyId", f.Signature.KeyID, "bytes", f.Size)
		}
	}
	slices.SortFunc(recs, func(a, b manifest.Mirror) int {
		return strings.Compare(a.Kind+"/"+a.ExportID, b.Kind+"/"+b.ExportID)
	})
	return srcs, recs, nil
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
