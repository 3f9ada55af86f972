// Package fetch rehydrates one debug file, named by its build id, from an
// installed site, from a kit file, or from the debug store artifact in an
// OCI registry (docs/debug.md, "offkit debug fetch").
//
// From a kit, the manifest's signature is checked first (verify.Head);
// with a seek table, the entry's place in the decompressed stream follows
// from the manifest alone (kitfile.Span), and only the frames holding the
// head and the entry are read and decoded (seekable.RandomReader); without
// one (a kit recompressed by stock zstd), the kit is decoded from the
// start up to the entry. Either way the bytes are checked against the
// signed manifest's size and sha256 as they are written, and the file's own
// GNU build id must be its name. The caller writes to a temporary file and
// keeps it only when the fetch returns nil.
package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/ctxio"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/internal/verifyread"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// Options configure a fetch.
type Options struct {
	// Kind is the file wanted: debugstore.KindDebuginfo (the default) or
	// debugstore.KindExecutable.
	Kind debugstore.Kind
	// Keys are the trusted keys of a kit's manifest signature.
	Keys []*sign.PublicKey
	// Now is the time a kit's expiry is judged at; zero means time.Now().
	Now time.Time
}

func (o Options) kind() debugstore.Kind {
	if o.Kind == "" {
		return debugstore.KindDebuginfo
	}
	return o.Kind
}

// Result describes a fetched file.
type Result struct {
	BuildID string `json:"buildId"`
	Kind    string `json:"kind"`
	// Entry is the file's path in the kit, the generation or the artifact.
	Entry  string `json:"entry"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Seekable tells a kit read through its seek table (only the frames
	// holding the head and the entry) from one decoded from the start.
	Seekable bool `json:"seekable,omitempty"`
	// FramesDecoded and Frames count the kit's frames.
	FramesDecoded int `json:"framesDecoded,omitempty"`
	Frames        int `json:"frames,omitempty"`
	// Digest is the layer's digest, from a registry.
	Digest string `json:"digest,omitempty"`
}

// path is the store path (debug/.build-id/…) of id's file of kind k.
func path(id string, k debugstore.Kind) string {
	if k == debugstore.KindExecutable {
		return debugstore.ExecutablePath(id)
	}
	return debugstore.DebugPath(id)
}

// checked tees what is written into a window, for the build id check
// once the file is written.
type checked struct {
	win *debugstore.Window
	w   io.Writer
}

func (c checked) Write(p []byte) (int, error) {
	if _, err := c.win.Write(p); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// FromKit writes to w the file of build id id (ParseID'd by the caller)
// from the kit whose size compressed bytes r holds; name names the kit in
// errors.
func FromKit(ctx context.Context, r io.ReaderAt, size int64, name, id string, o Options, w io.Writer) (*Result, error) {
	res, err := fromKit(ctx, r, size, id, o, w)
	if err != nil {
		return nil, fmt.Errorf("kit %s: %w", name, err)
	}
	return res, nil
}

func fromKit(ctx context.Context, r io.ReaderAt, size int64, id string, o Options, w io.Writer) (*Result, error) {
	if len(o.Keys) == 0 {
		return nil, fmt.Errorf("no trusted key given: %w", errdef.ErrSignature)
	}
	frames, err := seekable.ReadSeekTable(r, size)
	switch {
	case errors.Is(err, seekable.ErrNoSeekTable):
		return fromStream(ctx, io.NewSectionReader(r, 0, size), id, o, w)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", err, errdef.ErrInvalid)
	}
	rr, err := seekable.NewRandomReader(r, frames)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	h, err := kitfile.ReadHeadDecoded(io.NewSectionReader(rr, 0, rr.Size()))
	if err != nil {
		return nil, streamError(err)
	}
	m, e, err := trustHead(h, id, o)
	if err != nil {
		return nil, err
	}
	// The content entries follow the head in manifest order, each with
	// the canonical header (kitfile.Span): the entry's place is known.
	off := h.Size
	for _, x := range m.Entries {
		if x.Path == e.Path {
			break
		}
		if !x.InBase {
			off += kitfile.Span(x.Path, x.Size, m.CreatedAt)
		}
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(kitfile.Header(e.Path, e.Size, m.CreatedAt)); err != nil {
		return nil, fmt.Errorf("entry %q: %w: %w", e.Path, err, errdef.ErrInvalid)
	}
	got := make([]byte, hdr.Len())
	if n, err := rr.ReadAt(got, off); n < len(got) {
		return nil, streamError(fmt.Errorf("entry %q: reading its header at offset %d: %w", e.Path, off, orEOF(err)))
	}
	if !bytes.Equal(got, hdr.Bytes()) {
		return nil, fmt.Errorf("entry %q: no canonical header for it at offset %d of the tar stream, where the manifest places it: %w", e.Path, off, errdef.ErrInvalid)
	}
	res, err := copyEntry(ctx, io.NewSectionReader(rr, off+int64(len(got)), e.Size), id, o, e, w)
	if err != nil {
		return nil, err
	}
	res.Seekable, res.FramesDecoded, res.Frames = true, rr.Decoded, len(frames)
	return res, nil
}

func orEOF(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fromStream reads a kit without seek table from the start up to the entry.
func fromStream(ctx context.Context, raw io.Reader, id string, o Options, w io.Writer) (*Result, error) {
	kr, err := kitfile.NewReader(raw, nil, 1, kitfile.HeadLimit)
	if err != nil {
		return nil, err
	}
	defer kr.Close()
	h, err := kr.ReadHead()
	if err != nil {
		return nil, err
	}
	m, e, err := trustHead(h, id, o)
	if err != nil {
		return nil, err
	}
	kr.SetLimit(h.Size + m.TotalSize() + int64(len(m.Entries)+4)*(4*512+2*manifest.MaxPathLen) + 10240)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := kr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("entry %q: listed in the manifest but missing from the kit: %w", e.Path, errdef.ErrInvalid)
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name != e.Path {
			continue
		}
		if hdr.Size != e.Size {
			return nil, fmt.Errorf("entry %q: size %d, manifest says %d: %w", e.Path, hdr.Size, e.Size, errdef.ErrDigestMismatch)
		}
		return copyEntry(ctx, kr, id, o, e, w)
	}
}

// trustHead checks the head's signature and expiry and finds id's entry.
func trustHead(h *kitfile.Head, id string, o Options) (*manifest.Manifest, manifest.Entry, error) {
	m, _, err := verify.Head(h, o.Keys)
	if err != nil {
		return nil, manifest.Entry{}, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if m.Expired(now) {
		return nil, manifest.Entry{}, fmt.Errorf("kit %s %s expired at %s: %w", m.Name, m.Version, m.ExpiresAt.Format(time.RFC3339), errdef.ErrExpired)
	}
	p := path(id, o.kind())
	for _, e := range m.Entries {
		if e.Path != p {
			continue
		}
		if e.InBase {
			return nil, manifest.Entry{}, fmt.Errorf("%s %s carries %s in its base kit, not itself: fetch it from the base: %w", m.Name, m.Version, p, errdef.ErrNotFound)
		}
		return m, e, nil
	}
	return nil, manifest.Entry{}, fmt.Errorf("%s %s does not carry build id %s (no %s): %w", m.Name, m.Version, id, p, errdef.ErrNotFound)
}

// copyEntry copies the entry's bytes from r to w through the verifying
// reader, then checks the file's build id.
func copyEntry(ctx context.Context, r io.Reader, id string, o Options, e manifest.Entry, w io.Writer) (*Result, error) {
	win := debugstore.NewWindow(e.Size)
	v := verifyread.New(r, e.Path, e.Size, "sha256:"+e.SHA256)
	// io.Copy ends without error only at v's io.EOF, which v returns only
	// for exactly the declared bytes.
	if _, err := io.Copy(checked{win: win, w: w}, ctxio.Reader(ctx, v)); err != nil {
		return nil, streamError(err)
	}
	if _, err := debugstore.CheckStoredName(e.Path, win, e.Size); err != nil {
		return nil, fmt.Errorf("entry %q: %w", e.Path, err)
	}
	return &Result{BuildID: id, Kind: string(o.kind()), Entry: e.Path, Size: e.Size, SHA256: e.SHA256}, nil
}

// streamError classifies an error of the decoded stream: a damaged frame
// is errdef.ErrDigestMismatch, a frame or seek table that lies, or a
// truncated kit, errdef.ErrInvalid; errors that carry a sentinel already
// and errors of the file are returned as they are.
func streamError(err error) error {
	var damage *seekable.DamageError
	switch {
	case errors.Is(err, errdef.ErrInvalid), errors.Is(err, errdef.ErrDigestMismatch), errors.Is(err, errdef.ErrSignature):
		return err
	case errors.As(err, &damage):
		return fmt.Errorf("%w: %w", err, errdef.ErrDigestMismatch)
	case errors.Is(err, seekable.ErrFormat):
		return fmt.Errorf("%w: %w", err, errdef.ErrInvalid)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the kit is truncated: %w", err, errdef.ErrInvalid)
	}
	return err
}

// FromSite writes to w the file of build id id from the generation of the
// site at root being served, as offkit serve and debug find read it.
func FromSite(ctx context.Context, root, id string, o Options, w io.Writer) (*Result, error) {
	gen, _, err := site.NewView(root).OpenGeneration()
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	f, st, name, err := debugstore.Open(gen, id, o.kind())
	if err != nil {
		return nil, fmt.Errorf("site %s: build id %s: %w", root, id, err)
	}
	defer f.Close()
	h := sha256.New()
	win := debugstore.NewWindow(st.Size())
	n, err := io.Copy(io.MultiWriter(checked{win: win, w: w}, h), ctxio.Reader(ctx, io.NewSectionReader(f, 0, st.Size())))
	if err != nil {
		return nil, fmt.Errorf("site %s: %s: %w", root, name, err)
	}
	if n != st.Size() {
		return nil, fmt.Errorf("site %s: %s: %d of %d bytes: %w", root, name, n, st.Size(), errdef.ErrDigestMismatch)
	}
	if _, err := debugstore.CheckStoredName(name, win, n); err != nil {
		return nil, fmt.Errorf("site %s: %s: %w", root, name, err)
	}
	return &Result{BuildID: id, Kind: string(o.kind()), Entry: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
