package verify

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// debugCheck applies rule 9 as the kit streams: each file of a .build-id
// tree under debug/ has the GNU build id its name says (read from the
// file's first and last bytes, debugstore.Window, as offkit build reads
// it), and debug/debug-manifest.json lists exactly the files of the
// manifest's debug[], each an entry of the kit (debugstore.CheckManifest).
type debugCheck struct {
	m        *manifest.Manifest
	dm       *bytes.Buffer // the debug manifest's bytes, once streaming
	dmListed bool          // the debug manifest is an entry (shipped or in the base)
	win      *debugstore.Window
}

func newDebugCheck(m *manifest.Manifest) *debugCheck {
	d := &debugCheck{m: m}
	for _, e := range m.Entries {
		if e.Path == debugstore.ManifestPath {
			d.dmListed = true
		}
	}
	return d
}

// writer returns where shipped entry e's bytes are kept while they stream:
// nil when e is not checked here.
func (d *debugCheck) writer(e manifest.Entry) (io.Writer, error) {
	d.win = nil
	if !strings.HasPrefix(e.Path, debugstore.StoreDir+"/") {
		return nil, nil
	}
	if e.Path == debugstore.ManifestPath {
		if e.Size > debugstore.MaxManifestSize {
			return nil, entryErrorf(e.Path, "%d bytes, over the limit of %d: %w", e.Size, debugstore.MaxManifestSize, errdef.ErrInvalid)
		}
		d.dm = bytes.NewBuffer(make([]byte, 0, e.Size))
		return d.dm, nil
	}
	if _, ok := debugstore.StoredID(e.Path); !ok {
		return nil, nil
	}
	d.win = debugstore.NewWindow(e.Size)
	return d.win, nil
}

// entryDone checks shipped entry e once its bytes have streamed and match
// the manifest.
func (d *debugCheck) entryDone(e manifest.Entry) error {
	if d.win == nil {
		return nil
	}
	w := d.win
	d.win = nil
	if !w.Complete() {
		return entryErrorf(e.Path, "not read whole for its build id check: %w", errdef.ErrInvalid)
	}
	if _, err := debugstore.CheckStoredName(e.Path, w, e.Size); err != nil {
		return entryErrorf(e.Path, "%w", err)
	}
	return nil
}

// finish checks the debug manifest against the manifest once every entry
// has streamed. A delta kit whose debug manifest is in its base was checked
// with the base.
func (d *debugCheck) finish() error {
	switch {
	case d.dm != nil:
		return debugstore.CheckManifest(d.m, d.dm.Bytes())
	case d.dmListed:
		return nil
	case len(d.m.Debug) > 0:
		return fmt.Errorf("%s: the manifest's debug[] lists %d files, but the kit carries no %s: %w", kitfile.ManifestPath, len(d.m.Debug), debugstore.ManifestPath, errdef.ErrInvalid)
	}
	return nil
}
