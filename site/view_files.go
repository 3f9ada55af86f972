package site

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/manifest"
)

// OpenGeneration resolves `current` once and opens the generation it points
// to. The returned root reads that one generation for as long as it is
// open, even after `current` moves on and the folder is renamed away for
// removal. id names the generation's content (the sha256 of its own state,
// which lists its kits by manifest digest): two opens with the same id see
// the same files.
func (v *View) OpenGeneration() (gen *os.Root, id string, err error) {
	for try := 1; ; try++ {
		dir, err := v.Generation()
		if err != nil {
			return nil, "", err
		}
		r, err := os.OpenRoot(dir)
		var b []byte
		if err == nil {
			b, err = limit.ReadFileIn(r, path.Join(metaDir, stateFile), MaxStateSize)
			if err != nil {
				r.Close()
			}
		}
		if errors.Is(err, fs.ErrNotExist) && try < 3 {
			continue // removed between reading `current` and opening it
		}
		if err != nil {
			return nil, "", fmt.Errorf("generation %s: %w", dir, err)
		}
		sum := sha256.Sum256(b)
		return r, "sha256:" + hex.EncodeToString(sum[:]), nil
	}
}

// genState reads and decodes the state of the generation open at gen
// (from OpenGeneration), within MaxStateSize.
func genState(gen *os.Root) (*State, error) {
	sp := path.Join(metaDir, stateFile)
	b, err := limit.ReadFileIn(gen, sp, MaxStateSize)
	if err != nil {
		return nil, err
	}
	return decodeState(sp, b)
}

// KitManifests returns the manifests of the kits active in the generation
// open at gen (from OpenGeneration), in the order of its state. Each
// manifest is read within manifest.MaxManifestSize and must have the digest
// the generation's state records for its kit, so the result is every kit of
// that generation or an error, never a part.
func (v *View) KitManifests(gen *os.Root) ([]*manifest.Manifest, error) {
	st, err := genState(gen)
	if err != nil {
		return nil, err
	}
	return kitManifests(gen, st)
}

// kitManifests is KitManifests for the state st already read from gen
// (genState), so that a caller that needs both reads the state once.
func kitManifests(gen *os.Root, st *State) ([]*manifest.Manifest, error) {
	sp := path.Join(metaDir, stateFile)
	out := make([]*manifest.Manifest, 0, len(st.Kits))
	for _, k := range st.Kits {
		if !fs.ValidPath(k.Name) || k.Name == "." || strings.Contains(k.Name, "/") {
			return nil, fmt.Errorf("%s: kit name %q: %w", sp, k.Name, errdef.ErrInvalid)
		}
		mp := path.Join(metaDir, "kits", k.Name, "manifest.json")
		mb, err := limit.ReadFileIn(gen, mp, manifest.MaxManifestSize)
		if err != nil {
			return nil, err
		}
		if d := manifest.Digest(mb); d != k.ManifestDigest {
			return nil, fmt.Errorf("%s: digest %s, the generation's state says %s: %w", mp, d, k.ManifestDigest, errdef.ErrDigestMismatch)
		}
		m, err := manifest.Parse(mb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mp, err)
		}
		out = append(out, m)
	}
	return out, nil
}
