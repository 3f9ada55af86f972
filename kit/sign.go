package kit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/kitfile"
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
	f, size, err := kitfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kit %w", err)
	}
	defer f.Close()
	frames, err := seekable.ReadSeekTable(f, size)
	if err != nil {
		return nil, fmt.Errorf("kit %s: signing needs the seek table: %w: %w", path, err, errdef.ErrInvalid)
	}
	head, err := kitfile.ReadHeadFrom(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, fmt.Errorf("kit %s: %w", path, err)
	}
	// The content starts in the first frame after the head.
	first, at := 0, int64(0)
	for first < len(frames) && at < head.Size {
		at += frames[first].DecompressedSize
		first++
	}
	if at != head.Size || first == len(frames) {
		return nil, fmt.Errorf("kit %s: the head does not end at a frame boundary before the content: %w", path, errdef.ErrInvalid)
	}
	m, err := manifest.Parse(head.ManifestBytes)
	if err != nil {
		return nil, err
	}
	sums := m.SHA256SUMS()
	if !bytes.Equal(head.Sums, sums) {
		return nil, fmt.Errorf("kit %s: %s does not match the manifest: %w", path, kitfile.SumsPath, errdef.ErrDigestMismatch)
	}
	m.Signer = &manifest.Signer{KeyID: key.Public().KeyID()}
	mbytes, err := m.Encode()
	if err != nil {
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
	// The new head, then every other frame as it is, through the writer
	// Build uses.
	kw, err := kitfile.NewWriter(io.MultiWriter(tmp, h), m.CreatedAt, kitfile.WriterOptions{
		Level: m.Compression.Level, FrameSize: int(m.Compression.FrameSize), Concurrency: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("kit %s: %w: %w", path, err, errdef.ErrInvalid)
	}
	defer kw.Close()
	if err := kw.WriteHead(mbytes, sig, bytes.NewReader(sums)); err != nil {
		return nil, err
	}
	var rest int64
	for _, fr := range frames[first:] {
		rest += fr.CompressedSize
	}
	if err := kw.CopyFrames(io.NewSectionReader(f, frames[first].Offset, rest), frames[first:]); err != nil {
		return nil, err
	}
	if err := kw.Close(); err != nil {
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
