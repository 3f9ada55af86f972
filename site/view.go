package site

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/internal/reponame"
)

// Limits on the site's own files as they are read back.
const (
	// MaxGenerationIndex bounds a generation's .offkit/images/index.json:
	// the image indexes of its active kits merged (each at most
	// verify.MaxImageIndex).
	MaxGenerationIndex = 64 << 20
	// MaxStateSize bounds state.json, the site's and each generation's.
	MaxStateSize = 16 << 20
)

// View reads an installed site without locking it, for `offkit serve` and
// `offkit push`: many views may read while one command changes the site.
// Each call resolves `current` once and reads only inside that generation,
// so a reader sees either the old generation or the new one, never a mix.
// Blobs are read from the shared store, which an install only adds to.
type View struct {
	root string
}

// NewView returns a read-only view of the site at root.
func NewView(root string) *View { return &View{root: root} }

// Generation returns the folder of the generation `current` points to, as
// a path that stays valid after `current` moves ("" and ErrNotFound when
// nothing is installed).
func (v *View) Generation() (string, error) {
	target, err := os.Readlink(filepath.Join(v.root, currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("site %s: nothing installed: %w", v.root, errdef.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("site %s: %w", v.root, err)
	}
	target = filepath.Clean(target)
	if filepath.IsAbs(target) || !strings.HasPrefix(target, genDir+string(filepath.Separator)) {
		return "", fmt.Errorf("site %s: current points outside %s/: %w", v.root, genDir, errdef.ErrInvalid)
	}
	return filepath.Join(v.root, target), nil
}

// Images returns the image index (an OCI index whose descriptors carry
// org.opencontainers.image.ref.name) of the generation being served, and
// that generation's folder, which names it. A generation removed between
// reading `current` and the index is retried once.
func (v *View) Images() (generation string, index []byte, err error) {
	for try := 0; ; try++ {
		gen, err := v.Generation()
		if err != nil {
			return "", nil, err
		}
		b, err := limit.ReadRegularFile(filepath.Join(gen, metaDir, "images", "index.json"), MaxGenerationIndex)
		if errors.Is(err, fs.ErrNotExist) && try == 0 {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return gen, []byte(`{"schemaVersion":2,"manifests":[]}`), nil
		}
		return gen, b, err
	}
}

// Blob opens the blob with digest d ("sha256:" + 64 hex) in the store. A
// blob that is not a regular file is refused at once, errdef.ErrInvalid:
// a named pipe in the store does not hold the caller (a request) waiting
// for a writer.
func (v *View) Blob(d string) (*os.File, error) {
	if !reponame.ValidDigest(d) {
		return nil, fmt.Errorf("digest %q: %w", d, errdef.ErrInvalid)
	}
	f, _, err := plainfile.OpenRegular(filepath.Join(v.root, filepath.FromSlash(storeBlobs), strings.TrimPrefix(d, "sha256:")))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdef.ErrNotFound)
	}
	return f, err
}

// Tree returns the folder of one part of the generation being served
// ("rules", "dashboards", "debug", ...).
func (v *View) Tree(part string) (string, error) {
	gen, err := v.Generation()
	if err != nil {
		return "", err
	}
	return filepath.Join(gen, part), nil
}

// State returns the state of the generation being served (the copy the
// generation was made with, so it never disagrees with what is served).
func (v *View) State() (*State, error) {
	gen, err := v.Generation()
	if err != nil {
		return nil, err
	}
	p := filepath.Join(gen, metaDir, stateFile)
	b, err := limit.ReadRegularFile(p, MaxStateSize)
	if err != nil {
		return nil, err
	}
	return decodeState(p, b)
}

// KitsInstalled returns the generation being served (named as Images names
// it) and when each of its active kits was installed, read from that
// generation's own state: what a registry needs to let the kit installed
// first keep a tag two kits claim.
func (v *View) KitsInstalled() (generation string, installed map[string]time.Time, err error) {
	gen, err := v.Generation()
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(gen, metaDir, stateFile)
	b, err := limit.ReadRegularFile(p, MaxStateSize)
	if err != nil {
		return gen, nil, err
	}
	st, err := decodeState(p, b)
	if err != nil {
		return gen, nil, err
	}
	installed = make(map[string]time.Time, len(st.Kits))
	for _, k := range st.Kits {
		installed[k.Name] = k.InstalledAt
	}
	return gen, installed, nil
}
