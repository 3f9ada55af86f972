package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
)

// DebugResult reports the push of a site's debug store.
type DebugResult struct {
	// Reference is HOST/NAMESPACE/debug-store:TAG.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Files     int    `json:"files"`
	Copied    int    `json:"copied"`
	Skipped   int    `json:"skipped"`
	Bytes     int64  `json:"bytes"`
}

// debugFile is one .debug file of the generation.
type debugFile struct {
	name string // debug/.build-id/<aa>/<rest>.debug
	id   string
	desc ocispec.Descriptor
}

// DebugStore pushes the .debug files of the generation gen (the folder of
// the generation a site serves, opened with os.Root) as the debug store
// artifact (package debugstore) to TARGET/NAMESPACE/debug-store:tag (tag ""
// means debugstore.ArtifactTag). Only regular files named
// debug/.build-id/<aa>/<rest>.debug are pushed; a blob the registry has is
// skipped. A generation without any is errdef.ErrNotFound, and nothing is
// pushed.
func DebugStore(ctx context.Context, gen *os.Root, tag string, opts Options) (*DebugResult, error) {
	t, err := ParseTarget(opts.To)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		tag = debugstore.ArtifactTag
	}
	files, err := listDebug(ctx, gen)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .debug files in %s/.build-id of the generation served: %w", debugstore.StoreDir, errdef.ErrNotFound)
	}
	repoName, err := t.repository(debugstore.ArtifactRepository)
	if err != nil {
		return nil, err
	}
	p, err := newPusher(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	repo, err := p.remoteRepo(repoName)
	if err != nil {
		return nil, err
	}
	res := &DebugResult{Reference: t.Host + "/" + repoName + ":" + tag, Files: len(files)}
	layers := make([]ocispec.Descriptor, 0, len(files))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := repo.Exists(ctx, f.desc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, p.registryError(err))
		}
		if ok {
			res.Skipped++
		} else {
			if err := pushFile(ctx, repo, gen, f); err != nil {
				return nil, fmt.Errorf("%s: pushing to %s: %w", f.name, res.Reference, p.registryError(err))
			}
			res.Copied++
			res.Bytes += f.desc.Size
		}
		layers = append(layers, f.desc)
	}
	m, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, debugstore.ArtifactType, oras.PackManifestOptions{
		Layers: layers,
		// A fixed date: the same files give the same manifest.
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"},
	})
	if err != nil {
		return nil, fmt.Errorf("debug store manifest: pushing to %s: %w", res.Reference, p.registryError(err))
	}
	if err := repo.Tag(ctx, m, tag); err != nil {
		return nil, fmt.Errorf("debug store: tagging %s: %w", res.Reference, p.registryError(err))
	}
	res.Digest = m.Digest.String()
	return res, nil
}

// pushFile uploads one file, checking on the way that it still has the
// digest it was listed with.
func pushFile(ctx context.Context, repo *remote.Repository, gen *os.Root, f debugFile) error {
	// Opened without waiting: a named pipe put in the file's place since
	// it was listed is refused, not waited on.
	fh, _, err := plainfile.OpenRegularIn(gen, f.name)
	if err != nil {
		return err
	}
	defer fh.Close()
	return repo.Push(ctx, f.desc, io.LimitReader(fh, f.desc.Size))
}

// listDebug lists and hashes the .debug files of gen's .build-id tree,
// sorted by name.
func listDebug(ctx context.Context, gen *os.Root) ([]debugFile, error) {
	dir := path.Join(debugstore.StoreDir, ".build-id")
	var files []debugFile
	err := fs.WalkDir(gen.FS(), dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && name == dir {
				return fs.SkipDir
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(name, ".debug") {
			return nil
		}
		id, ok := debugstore.StoredID(name)
		if !ok || name != debugstore.DebugPath(id) {
			return nil
		}
		fh, st, err := plainfile.OpenRegularIn(gen, name)
		if err != nil {
			return err
		}
		defer fh.Close()
		if st.Size() > debugstore.MaxDebugFile {
			return fmt.Errorf("%s: %d bytes, over the limit of %d that debug fetch --from oci:// reads: %w", name, st.Size(), int64(debugstore.MaxDebugFile), errdef.ErrInvalid)
		}
		h := sha256.New()
		n, err := copybuf.Copy(h, fh)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files = append(files, debugFile{name: name, id: id, desc: ocispec.Descriptor{
			MediaType: debugstore.LayerMediaType,
			Digest:    digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))),
			Size:      n,
			Annotations: map[string]string{
				debugstore.AnnotationTitle:   debugstore.Title(id),
				debugstore.AnnotationBuildID: id,
			},
		}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("debug store: %w", err)
	}
	return files, nil
}
