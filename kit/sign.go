package kit

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// SignResult reports what Sign wrote.
type SignResult struct {
	KeyID          string `json:"keyId"`
	ManifestDigest string `json:"manifestDigest"`
	SignaturePath  string `json:"signaturePath"`
}

// Sign (re-)signs the kit at path with key: the head frame (manifest with
// the new signer, its signature, SHA256SUMS) is rewritten, every other frame
// is copied as it is, and K.sig is written beside. The result is the very
// kit that Build with that key gives. Sign needs the seek table; it does not
// check the content (verify does).
func Sign(path string, key *sign.PrivateKey) (*SignResult, error) {
	f, _, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("kit %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	frames, err := seekable.ReadSeekTable(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("kit %s: signing needs the seek table: %v: %w", path, err, errdef.ErrInvalid)
	}
	head := frames[0]
	comp := make([]byte, head.CompressedSize)
	if _, err := f.ReadAt(comp, head.Offset); err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(seekable.MaxFrameSize))
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(comp, nil)
	dec.Close()
	if err != nil {
		return nil, fmt.Errorf("kit %s: head frame: %v: %w", path, err, errdef.ErrInvalid)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var mbytes, sums []byte
	for sums == nil {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("kit %s: head frame does not hold the kit's head: %v: %w", path, err, errdef.ErrInvalid)
		}
		b, err := io.ReadAll(io.LimitReader(tr, manifest.MaxManifestSize+1))
		if err != nil {
			return nil, err
		}
		switch hdr.Name {
		case ManifestPath:
			mbytes = b
		case SignaturePath:
		case SumsPath:
			sums = b
		default:
			return nil, fmt.Errorf("kit %s: unexpected %q in the head frame: %w", path, hdr.Name, errdef.ErrInvalid)
		}
	}
	m, err := manifest.Parse(mbytes)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sums, m.SHA256SUMS()) {
		return nil, fmt.Errorf("kit %s: %s does not match the manifest: %w", path, SumsPath, errdef.ErrDigestMismatch)
	}
	m.Signer = &manifest.Signer{KeyID: key.Public().KeyID()}
	if mbytes, err = m.Encode(); err != nil {
		return nil, err
	}
	sig, err := key.SignBlob(mbytes)
	if err != nil {
		return nil, err
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".offkit-sign-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	// The new head frame, exactly as pack writes it.
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	for _, e := range []struct {
		name string
		b    []byte
	}{{ManifestPath, mbytes}, {SignaturePath, sig}, {SumsPath, sums}} {
		if err := tw.WriteHeader(Header(e.name, int64(len(e.b)), m.CreatedAt)); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.b); err != nil {
			return nil, err
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	enc, err := seekable.NewEncoder(zstd.EncoderLevelFromZstd(m.Compression.Level))
	if err != nil {
		return nil, err
	}
	newHead := enc.EncodeAll(hb.Bytes(), nil)
	enc.Close()
	if _, err := w.Write(newHead); err != nil {
		return nil, err
	}
	out := []seekable.Frame{{CompressedSize: int64(len(newHead)), DecompressedSize: int64(hb.Len())}}
	rest := frames[1:]
	var restLen int64
	for _, fr := range rest {
		restLen += fr.CompressedSize
		out = append(out, fr)
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, rest0(frames), restLen)); err != nil {
		return nil, err
	}
	if _, err := w.Write(seekable.SeekTable(out)); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	// A kit is published, not secret: CreateTemp's 0600 would hide it
	// from the courier's and the site's other accounts.
	if err := tmp.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	fsig, err := key.SignDigest(h.Sum(nil))
	if err != nil && !errors.Is(err, sign.ErrNeedsMessage) {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	res := &SignResult{KeyID: key.Public().KeyID(), ManifestDigest: manifest.Digest(mbytes)}
	// The old whole-file signature no longer matches; an Ed25519 key makes
	// no new one (it signs the manifest only).
	os.Remove(path + ".sig")
	if fsig != nil {
		if err := os.WriteFile(path+".sig", fsig, 0o644); err != nil {
			return nil, err
		}
		res.SignaturePath = path + ".sig"
	}
	return res, nil
}

func rest0(frames []seekable.Frame) int64 {
	if len(frames) < 2 {
		return frames[0].CompressedSize
	}
	return frames[1].Offset
}
