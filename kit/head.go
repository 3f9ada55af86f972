package kit

import (
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// MaxSignatureSize bounds offkit/manifest.json.sig.
const MaxSignatureSize = 16 << 10

// Head is the head of a kit as read, NOT verified: inspect shows it, and
// quarantine records it. Trust it only after verify.
type Head struct {
	ManifestBytes []byte
	Signature     []byte // nil for an unsigned kit
}

// ReadHead reads the manifest and its signature from the start of the kit at
// path, decoding only the first frames.
func ReadHead(path string) (*Head, error) {
	f, _, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("kit %w", err)
	}
	defer f.Close()
	r, err := NewReader(f, nil, 1, manifest.MaxManifestSize+MaxSignatureSize+16<<10)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := &Head{}
	hdr, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("kit %s: reading the head: %w", path, headErr(err))
	}
	if hdr.Name != ManifestPath || hdr.Size > manifest.MaxManifestSize {
		return nil, fmt.Errorf("kit %s: first entry is %q (%d bytes), not %s: %w", path, hdr.Name, hdr.Size, ManifestPath, errdef.ErrInvalid)
	}
	if h.ManifestBytes, err = io.ReadAll(r); err != nil {
		return nil, fmt.Errorf("kit %s: %w", path, err)
	}
	hdr, err = r.Next()
	if err != nil {
		return nil, fmt.Errorf("kit %s: reading the head: %w", path, headErr(err))
	}
	if hdr.Name == SignaturePath {
		if hdr.Size > MaxSignatureSize {
			return nil, fmt.Errorf("kit %s: %s over %d bytes: %w", path, SignaturePath, MaxSignatureSize, errdef.ErrInvalid)
		}
		if h.Signature, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("kit %s: %w", path, err)
		}
	}
	return h, nil
}

func headErr(err error) error {
	if err == io.EOF {
		return fmt.Errorf("kit ends early: %w", errdef.ErrInvalid)
	}
	return err
}
