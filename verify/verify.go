// Package verify checks a kit in one streaming pass: the manifest's
// signature first, then every byte against the manifest.
//
// Trust flows one way: key → signature → manifest bytes → every entry's
// sha256 and size → the bytes. The rules, in the order they are checked:
//  1. The first entry is offkit/manifest.json, at most
//     manifest.MaxManifestSize bytes; the second is offkit/manifest.json.sig,
//     at most sign.MaxSignatureSize bytes, a cosign blob signature over the
//     manifest bytes by one of the trusted keys (else errdef.ErrSignature).
//     Nothing else is read before that check, so a forged kit fails after a
//     few KiB.
//  2. The manifest parses and is canonical (manifest.Parse), and has not
//     expired (errdef.ErrExpired).
//  3. The third entry is SHA256SUMS, exactly as the manifest implies.
//  4. Then every shipped entry, in manifest order, each once: an entry the
//     manifest does not list, lists elsewhere, or lists but the kit lacks is
//     errdef.ErrInvalid; a size or sha256 that differs is
//     errdef.ErrDigestMismatch, naming the entry.
//  5. Nothing but tar padding follows, and the decompressed stream never
//     grows past what the manifest declares (a zstd bomb stops there).
//  6. When a whole-file signature (K.sig) is given, it verifies over the
//     SHA-256 of every compressed byte, hashed during the same pass.
//  7. Each image the manifest says was signed at build time
//     (images[].signedBy) is checked again from the kit alone: the carried
//     key (the blob named by its key id) signed the carried payload, a
//     cosign container image signature of the image's digest, in a layer of
//     the carried signature manifest (sign.VerifyImage). With
//     Options.ImageKeys, one of those keys must have signed it too, and an
//     image without signedBy fails as soon as the manifest is read. Only the
//     blobs signedBy names are kept in memory while the kit streams, each
//     listed in the manifest as shipped and at most MaxImageSignatureBlob
//     bytes, MaxImageSignatureBytes in all (else errdef.ErrInvalid). A
//     signature that does not verify is errdef.ErrSignature naming the image.
//  8. The images/ part is one OCI image layout that serves exactly what the
//     manifest's images[] lists (internal/ocilayout states the rules in
//     full); anything else is errdef.ErrInvalid naming the path, reference
//     or digest. As the manifest is read: under images/ only oci-layout,
//     index.json (at most MaxImageIndex bytes) and blobs
//     images/blobs/sha256/<hex> whose sha256 is hex; a blob that is a
//     manifest or index records its media type in its entry, and only those
//     blobs are kept in memory while the kit streams (MaxImageManifest bytes
//     each, MaxImageManifests in all). Once every byte has streamed, before
//     rule 7: index.json is an OCI index whose descriptors are each named
//     (org.opencontainers.image.ref.name) once, with a name `offkit serve`
//     can map and serve as one digest, and are exactly the
//     (reference, digest) pairs of images[], plus the cosign tags
//     (<repository>:sha256-<hex>.sig/.att, a .sig being one of the image's
//     images[].signatures) and OCI referrers (<repository>@<digest>, its
//     subject the image) of those images; everything it reaches (indexes
//     nested at most MaxImageDepth deep, image manifests, configs, layers,
//     subjects; at most MaxImageReach in all, counted per repository as the
//     registry counts) is in the kit, with sha256 digests and sizes that
//     tell the truth, and each manifest parses as the media type its
//     descriptor claims and its entry records. Rule 7's signature policy thus covers
//     every image the kit serves. Result.ImageIndex gives the checked
//     index.json to an installer.
//  9. Each file of the .build-id tree under debug/ (a path
//     debug/…/.build-id/<aa>/<rest>.debug or …/<rest>, <aa><rest> a
//     lowercase build id) has that GNU build id, read from its first and
//     last MiB as the bytes stream (debugstore.Window, the same bytes offkit
//     build reads); and debug/debug-manifest.json, when the kit carries it
//     or its manifest lists debug[], is canonical and lists exactly the
//     files of debug[], each an entry with its size and sha256
//     (debugstore.CheckManifest). Either failing is errdef.ErrInvalid
//     naming the entry and the build ids.
//
// Content reaches a Sink as it streams; a Sink must not make anything
// visible before Kit returns nil. Kit never writes anything itself.
package verify

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/internal/verifyread"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// headLimit bounds the decompressed bytes read before the manifest is known.
const headLimit = manifest.MaxManifestSize + sign.MaxSignatureSize + 64<<10

// perEntryOverhead bounds the tar bytes around one entry: header, PAX
// header with a long name, padding.
const perEntryOverhead = 4*512 + 2*manifest.MaxPathLen

// Sink receives each shipped entry's bytes as they stream. r yields exactly
// e.Size bytes; Entry must read it to EOF. The digest is checked after Entry
// returns, and a mismatch fails the verification.
type Sink interface {
	Entry(ctx context.Context, e manifest.Entry, r io.Reader) error
}

// Options configure a verification. Keys must not be empty.
type Options struct {
	Keys []*sign.PublicKey
	// ImageKeys are the trusted keys of cosign image signatures: when set,
	// every image of the kit must carry a signature by one of them (rule 7).
	ImageKeys []*sign.PublicKey
	// Now is the time expiry is judged at; zero means time.Now().
	Now time.Time
	// OnManifest is called once the manifest is verified and parsed, before
	// any content is read; an error stops the verification.
	OnManifest func(m *manifest.Manifest, raw []byte) error
	// Sink receives the content; nil only hashes it.
	Sink Sink
	// Concurrency of frame decoding; 0 means GOMAXPROCS.
	Concurrency int
	// Progress is called with the decompressed bytes verified so far.
	Progress func(done, total int64)
}

// Result describes a verified kit.
type Result struct {
	Manifest *manifest.Manifest
	// ManifestDigest is the sha256 of the manifest's bytes. The bytes
	// themselves are not kept (OnManifest is given them): a large kit's
	// manifest is megabytes that need not stay in memory while its content
	// streams.
	ManifestDigest string
	Signer         *sign.PublicKey
	Seekable       bool
	// FileSignature is "verified" or "absent".
	FileSignature string
	Entries       int
	Bytes         int64
	// SignedImages lists the images whose cosign signature was checked.
	SignedImages []SignedImage
	// ImageIndex is the kit's images/index.json, checked (rule 8): what an
	// installer serves, with no need to parse the entry itself. Nil for a
	// kit without images.
	ImageIndex []byte
}

// File verifies the kit at path. A whole-file signature at path+".sig" is
// checked when present.
func File(ctx context.Context, path string, opts Options) (*Result, error) {
	f, size, err := kitfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kit %w", err)
	}
	defer f.Close()
	frames, err := seekable.ReadSeekTable(f, size)
	switch {
	case errors.Is(err, seekable.ErrNoSeekTable):
		frames = nil
	case err != nil:
		return nil, fmt.Errorf("kit %s: %w: %w", path, err, errdef.ErrInvalid)
	}
	fileSig, err := readSig(path + ".sig")
	if err != nil {
		return nil, err
	}
	// The whole file is hashed in the same pass, only when there is a
	// signature to check it against.
	h := sha256.New()
	var raw io.Reader = io.NewSectionReader(f, 0, size)
	if fileSig != nil {
		raw = io.TeeReader(raw, h)
	}
	res, err := stream(ctx, raw, frames, opts)
	if err != nil {
		return nil, fmt.Errorf("kit %s: %w", path, err)
	}
	// Whatever the reader left unread still counts for the file's digest.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, err
	}
	res.FileSignature = "absent"
	if fileSig != nil {
		if res.Signer.NeedsMessage() {
			return nil, fmt.Errorf("whole-file signature %s.sig: the kit's signer is an Ed25519 key, which signs the manifest only; remove the .sig or check it with cosign: %w", path, errdef.ErrSignature)
		}
		if err := res.Signer.VerifyDigest(h.Sum(nil), fileSig); err != nil {
			return nil, fmt.Errorf("whole-file signature %s.sig: %w", path, err)
		}
		res.FileSignature = "verified"
	}
	return res, nil
}

// Stream verifies a kit read sequentially from r (a pipe, joined parts, a
// recompressed kit without seek table).
func Stream(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	return stream(ctx, r, nil, opts)
}

func readSig(path string) ([]byte, error) {
	f, _, err := kitfile.Open(path)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("whole-file signature %w", err)
	}
	defer f.Close()
	b, err := limit.ReadAll(f, "signature "+path, sign.MaxSignatureSize)
	if errors.Is(err, errdef.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", err, errdef.ErrSignature)
	}
	return b, err
}

// stream verifies; a damaged frame's error names the entries it carries.
func stream(ctx context.Context, raw io.Reader, frames []seekable.Frame, opts Options) (*Result, error) {
	var head *kitHead
	res, err := streamWith(ctx, raw, frames, opts, &head)
	if err != nil {
		return nil, explainDamage(err, frames, head)
	}
	return res, nil
}

// kitHead is what is known of a kit once its head has been read: enough to
// place every entry in the decompressed stream.
type kitHead struct {
	m                     *manifest.Manifest
	mlen, siglen, sumslen int64
}

// explainDamage adds to the error of a damaged frame the entries that frame
// carries (known from the manifest once the head is read: kit entries
// follow each other with canonical headers).
func explainDamage(err error, frames []seekable.Frame, head *kitHead) error {
	var damage *seekable.DamageError
	if !errors.As(err, &damage) || damage.Frame < 0 || damage.Frame >= len(frames) {
		return err
	}
	var start int64
	for _, f := range frames[:damage.Frame] {
		start += f.DecompressedSize
	}
	end := start + frames[damage.Frame].DecompressedSize
	if head == nil {
		if start == 0 {
			return fmt.Errorf("%w (it holds the kit's head, %s)", err, kitfile.ManifestPath)
		}
		return err
	}
	type span struct {
		name string
		size int64
	}
	spans := []span{{kitfile.ManifestPath, head.mlen}, {kitfile.SignaturePath, head.siglen}, {kitfile.SumsPath, head.sumslen}}
	for _, e := range head.m.Entries {
		spans = append(spans, span{e.Path, e.Size})
	}
	var names []string
	var off int64
	for _, s := range spans {
		next := off + kitfile.Span(s.name, s.size, head.m.CreatedAt)
		if off < end && next > start {
			names = append(names, strconv.Quote(s.name))
		}
		if off >= end {
			break
		}
		off = next
	}
	if len(names) > maxNamed {
		names = append(names[:maxNamed], fmt.Sprintf("and %d more", len(names)-maxNamed))
	}
	if len(names) == 0 {
		return err
	}
	return fmt.Errorf("%w (it carries %s)", err, strings.Join(names, ", "))
}

// maxNamed bounds the entries a damaged frame's error lists.
const maxNamed = 20

func streamWith(ctx context.Context, raw io.Reader, frames []seekable.Frame, opts Options, head **kitHead) (*Result, error) {
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("no trusted key given: %w", errdef.ErrSignature)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	kr, err := kitfile.NewReader(raw, frames, opts.Concurrency, headLimit)
	if err != nil {
		return nil, err
	}
	defer kr.Close()
	// Every name is checked below: the head's by name, the content's
	// against the manifest's entries in order.
	kr.CheckedInOrder()

	mbytes, err := readHeadEntry(kr, kitfile.ManifestPath, manifest.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	sig, err := readHeadEntry(kr, kitfile.SignaturePath, sign.MaxSignatureSize)
	if errors.Is(err, errUnexpectedName) {
		return nil, fmt.Errorf("kit is not signed (no %s): %w", kitfile.SignaturePath, errdef.ErrSignature)
	}
	if err != nil {
		return nil, err
	}
	m, signer, err := checkHead(mbytes, sig, opts.Keys)
	if err != nil {
		return nil, err
	}
	sumslen := int64(m.SHA256SUMSSize())
	*head = &kitHead{m: m, mlen: int64(len(mbytes)), siglen: int64(len(sig)), sumslen: sumslen}
	if !kr.ModTime().Equal(m.CreatedAt) {
		return nil, fmt.Errorf("%s: entries are dated %s, but the kit was created at %s: %w", kitfile.ManifestPath, kr.ModTime().Format(time.RFC3339), m.CreatedAt.Format(time.RFC3339), errdef.ErrInvalid)
	}
	if m.Expired(now) {
		return nil, fmt.Errorf("kit %s %s expired at %s: %w", m.Name, m.Version, m.ExpiresAt.Format(time.RFC3339), errdef.ErrExpired)
	}
	if opts.OnManifest != nil {
		if err := opts.OnManifest(m, mbytes); err != nil {
			return nil, err
		}
	}
	isigs, err := newImageSigs(m, opts.ImageKeys)
	if err != nil {
		return nil, err
	}
	layout, err := ocilayout.New(m)
	if err != nil {
		return nil, err
	}
	total := m.TotalSize()
	mdigest := manifest.Digest(mbytes)
	kr.SetLimit(int64(len(mbytes)+len(sig)) + sumslen + total + int64(len(m.Entries)+4)*perEntryOverhead + 10240)

	if err := checkSums(kr, m, sumslen); err != nil {
		return nil, err
	}

	// index finds an entry by path: manifest.Parse has checked that the
	// entries are sorted and unique, so a search needs no map of them all.
	index := func(p string) (int, bool) {
		j, ok := slices.BinarySearchFunc(m.Entries, p, func(e manifest.Entry, p string) int { return strings.Compare(e.Path, p) })
		return j, ok
	}
	res := &Result{Manifest: m, ManifestDigest: mdigest, Signer: signer, Seekable: kr.Seekable()}
	dbg := newDebugCheck(m)
	var done int64
	for i, e := range m.Entries {
		if e.InBase {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := kr.Next()
		if err == io.EOF {
			return nil, entryErrorf(e.Path, "listed in the manifest but missing from the kit: %w", errdef.ErrInvalid)
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name != e.Path {
			if j, ok := index(hdr.Name); ok && j < i {
				return nil, entryErrorf(hdr.Name, "appears twice or out of order: %w", errdef.ErrInvalid)
			} else if ok {
				return nil, entryErrorf(e.Path, "listed in the manifest but missing from the kit (found %q in its place): %w", hdr.Name, errdef.ErrInvalid)
			}
			return nil, entryErrorf(hdr.Name, "not listed in the manifest: %w", errdef.ErrInvalid)
		}
		if hdr.Size != e.Size {
			return nil, entryErrorf(e.Path, "size %d, manifest says %d: %w", hdr.Size, e.Size, errdef.ErrDigestMismatch)
		}
		var keep *bytes.Buffer
		var tee []io.Writer
		if isigs.wants(e) || layout.Wants(e.Path) {
			keep = bytes.NewBuffer(make([]byte, 0, e.Size))
			tee = append(tee, keep)
		}
		dw, err := dbg.writer(e)
		if err != nil {
			return nil, err
		}
		if dw != nil {
			tee = append(tee, dw)
		}
		if err := checkEntry(ctx, kr, e, opts.Sink, tee...); err != nil {
			return nil, err
		}
		if err := dbg.entryDone(e); err != nil {
			return nil, err
		}
		if keep != nil {
			isigs.keep(e, keep.Bytes())
			layout.Add(e.Path, keep.Bytes())
		}
		done += e.Size
		res.Entries++
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	hdr, err := kr.Next()
	if err == nil {
		if _, ok := index(hdr.Name); ok {
			return nil, entryErrorf(hdr.Name, "appears twice: %w", errdef.ErrInvalid)
		}
		return nil, entryErrorf(hdr.Name, "not listed in the manifest: %w", errdef.ErrInvalid)
	}
	if err != io.EOF {
		return nil, err
	}
	if err := kr.Finish(); err != nil {
		return nil, err
	}
	if err := dbg.finish(); err != nil {
		return nil, err
	}
	if res.ImageIndex, err = layout.Check(); err != nil {
		return nil, err
	}
	if res.SignedImages, err = isigs.check(); err != nil {
		return nil, err
	}
	res.Bytes = done
	return res, nil
}

// checkEntry streams the current entry to sink through the verifying
// reader: the sink sees io.EOF only once the entry's bytes are the ones the
// manifest declares. Each of tee receives a copy of the bytes.
func checkEntry(ctx context.Context, kr *kitfile.Reader, e manifest.Entry, sink Sink, tee ...io.Writer) error {
	v := verifyread.New(kr, "", e.Size, "sha256:"+e.SHA256)
	var r io.Reader = v
	switch len(tee) {
	case 0:
	case 1:
		r = io.TeeReader(v, tee[0])
	default:
		r = io.TeeReader(v, io.MultiWriter(tee...))
	}
	if sink != nil {
		if err := sink.Entry(ctx, e, r); err != nil {
			return asEntryError(e.Path, err)
		}
		if v.N() != e.Size {
			return entryErrorf(e.Path, "sink left %d bytes unread", e.Size-v.N())
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return asEntryError(e.Path, err)
	}
	return nil
}

// asEntryError names path in err, unless err names an entry already (the
// reader's refusals do).
func asEntryError(path string, err error) error {
	if ee := (*kitfile.EntryError)(nil); errors.As(err, &ee) {
		return err
	}
	return &kitfile.EntryError{Path: path, Err: err}
}

// Head checks the head of a kit, as kitfile.ReadHead returns it: the
// manifest must be signed by one of keys and name that key as its signer
// (else errdef.ErrSignature). It returns the manifest and the key. Only
// the head is checked, nothing it promises about the content: File does
// that.
func Head(h *kitfile.Head, keys []*sign.PublicKey) (*manifest.Manifest, *sign.PublicKey, error) {
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("no trusted key given: %w", errdef.ErrSignature)
	}
	if h.Signature == nil {
		return nil, nil, fmt.Errorf("kit is not signed (no %s): %w", kitfile.SignaturePath, errdef.ErrSignature)
	}
	return checkHead(h.ManifestBytes, h.Signature, keys)
}

// checkHead checks the manifest's signature (rule 1) and its signer.
func checkHead(mbytes, sig []byte, keys []*sign.PublicKey) (*manifest.Manifest, *sign.PublicKey, error) {
	signer, err := sign.VerifyAny(keys, mbytes, sig)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", kitfile.SignaturePath, err)
	}
	m, err := manifest.Parse(mbytes)
	if err != nil {
		return nil, nil, err
	}
	if m.Signer == nil || m.Signer.KeyID != signer.KeyID() {
		claimed := "no signer"
		if m.Signer != nil {
			claimed = "signer " + m.Signer.KeyID
		}
		return nil, nil, fmt.Errorf("%s: names %s, but key %s signed it: %w", kitfile.ManifestPath, claimed, signer.KeyID(), errdef.ErrSignature)
	}
	return m, signer, nil
}

// entryErrorf returns a *kitfile.EntryError for path, its cause formatted.
func entryErrorf(path, format string, args ...any) error {
	return &kitfile.EntryError{Path: path, Err: fmt.Errorf(format, args...)}
}

var errUnexpectedName = errors.New("unexpected entry")

// checkSums checks that the next entry is SHA256SUMS with exactly the bytes
// of m.SHA256SUMS() (size bytes), comparing them a line at a time, so that
// neither is held whole.
func checkSums(kr *kitfile.Reader, m *manifest.Manifest, size int64) error {
	hdr, err := nextHeadEntry(kr, kitfile.SumsPath, size)
	if err != nil {
		return err
	}
	mismatch := entryErrorf(kitfile.SumsPath, "does not match the manifest: %w", errdef.ErrDigestMismatch)
	if hdr.Size != size {
		return mismatch
	}
	br := bufio.NewReaderSize(kr, 64<<10)
	var want, got []byte
	for _, e := range m.Entries {
		if e.InBase {
			continue
		}
		want = append(append(append(append(want[:0], e.SHA256...), "  "...), e.Path...), '\n')
		got = slices.Grow(got[:0], len(want))[:len(want)]
		if _, err := io.ReadFull(br, got); err != nil {
			return asEntryError(kitfile.SumsPath, err)
		}
		if !bytes.Equal(got, want) {
			return mismatch
		}
	}
	return nil
}

// readHeadEntry reads the next entry, which must be called name and be at
// most max bytes.
func readHeadEntry(kr *kitfile.Reader, name string, max int) ([]byte, error) {
	hdr, err := nextHeadEntry(kr, name, int64(max))
	if err != nil {
		return nil, err
	}
	b := make([]byte, hdr.Size)
	if _, err := io.ReadFull(kr, b); err != nil {
		return nil, asEntryError(name, err)
	}
	return b, nil
}

// nextHeadEntry returns the header of the next entry, which must be called
// name and be at most max bytes.
func nextHeadEntry(kr *kitfile.Reader, name string, max int64) (*tar.Header, error) {
	hdr, err := kr.Next()
	if err == io.EOF {
		return nil, entryErrorf(name, "missing, the kit ends early: %w", errdef.ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name != name {
		return nil, entryErrorf(hdr.Name, "where %q belongs: %w: %w", name, errUnexpectedName, errdef.ErrInvalid)
	}
	if hdr.Size > max {
		return nil, entryErrorf(name, "%d bytes, over the limit of %d: %w", hdr.Size, max, errdef.ErrInvalid)
	}
	return hdr, nil
}
