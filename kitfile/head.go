package kitfile

import (
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// Head is the head of a kit as read, NOT verified: inspect shows it,
// quarantine records it, Sign replaces it. Trust it only after verify.
type Head struct {
	ManifestBytes []byte
	Signature     []byte // nil for an unsigned kit
	Sums          []byte // SHA256SUMS
	// Size is the number of tar bytes of the head, padding included: the
	// content entries start there.
	Size int64
}

// HeadLimit bounds the decompressed bytes of a kit's head, which ReadHead
// reads: the manifest, the signature and SHA256SUMS (which has a line per
// entry of the manifest and is so smaller than the manifest's limit), with
// their tar headers. A Reader that will read a head first is made with it,
// and raised with SetLimit once the head is trusted.
const HeadLimit = 2*manifest.MaxManifestSize + sign.MaxSignatureSize + 3*(MaxHeaderBytes+512)

// ReadHead reads the head of the kit at path, decoding only the first
// frames.
func ReadHead(path string) (*Head, error) {
	f, _, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("kit %w", err)
	}
	defer f.Close()
	h, err := ReadHeadFrom(f)
	if err != nil {
		return nil, fmt.Errorf("kit %s: %w", path, err)
	}
	return h, nil
}

// ReadHeadFrom reads the head of the kit whose compressed bytes r returns,
// with the checks of Reader, and nothing past it.
func ReadHeadFrom(raw io.Reader) (*Head, error) {
	r, err := NewReader(raw, nil, 1, HeadLimit)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readHead(r)
}

// ReadHeadDecoded reads the head of a kit from its decompressed tar stream
// (a seekable.RandomReader's, read from the start), with the checks of
// Reader, and nothing past it.
func ReadHeadDecoded(tarStream io.Reader) (*Head, error) {
	return readHead(newTarReader(tarStream, HeadLimit))
}

func readHead(r *Reader) (*Head, error) {
	h := &Head{}
	hdr, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the head: %w", headErr(err))
	}
	if hdr.Name != ManifestPath {
		return nil, fmt.Errorf("first entry is %q, not %s: %w", hdr.Name, ManifestPath, errdef.ErrInvalid)
	}
	if h.ManifestBytes, err = readEntry(r, hdr.Name, hdr.Size, manifest.MaxManifestSize); err != nil {
		return nil, err
	}
	hdr, err = r.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the head: %w", headErr(err))
	}
	if hdr.Name == SignaturePath {
		if h.Signature, err = readEntry(r, hdr.Name, hdr.Size, sign.MaxSignatureSize); err != nil {
			return nil, err
		}
		if hdr, err = r.Next(); err != nil {
			return nil, fmt.Errorf("reading the head: %w", headErr(err))
		}
	}
	if hdr.Name != SumsPath {
		return nil, fmt.Errorf("entry %q where %s belongs: %w", hdr.Name, SumsPath, errdef.ErrInvalid)
	}
	if h.Sums, err = readEntry(r, hdr.Name, hdr.Size, manifest.MaxManifestSize); err != nil {
		return nil, err
	}
	h.Size = r.lim.read + (512-hdr.Size%512)%512
	return h, nil
}

// readEntry reads the current entry, of size bytes, refusing one over max
// before reading it.
func readEntry(r *Reader, name string, size int64, max int) ([]byte, error) {
	if size > int64(max) {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d: %w", name, size, max, errdef.ErrInvalid)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, headErr(err))
	}
	return b, nil
}

func headErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("kit ends early: %w", errdef.ErrInvalid)
	}
	return err
}

// ReadHead reads the head of a kit from a Reader made with HeadLimit,
// which then goes on with the content entries.
func (r *Reader) ReadHead() (*Head, error) { return readHead(r) }
