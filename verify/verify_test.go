package verify_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

func opts(k *kittest.Key) verify.Options {
	return verify.Options{Keys: []*sign.PublicKey{k.Public}, Now: kittest.Created.Add(time.Hour)}
}

func TestVerifyBuiltKit(t *testing.T) {
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "zastava-runtime", "1.4.2", 1<<20, t.TempDir())
	v, err := verify.File(context.Background(), res.Path, opts(key))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Seekable || v.FileSignature != "verified" || v.Entries != len(res.Manifest.Entries) || v.ManifestDigest != res.ManifestDigest {
		t.Fatalf("result %+v", v)
	}
	if v.Signer.KeyID() != key.Public.KeyID() {
		t.Fatal("wrong signer")
	}
}

func TestVerifyRecompressedByStockZstd(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("no zstd")
	}
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "zastava-runtime", "1.4.2", 1<<20, t.TempDir())
	re := filepath.Join(t.TempDir(), "re.kit.tar.zst")
	cmd := exec.Command("sh", "-c", "zstd -dc "+res.Path+" | zstd -q -19 -o "+re)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	v, err := verify.File(context.Background(), re, opts(key))
	if err != nil {
		t.Fatal(err)
	}
	if v.Seekable || v.FileSignature != "absent" {
		t.Fatalf("%+v", v)
	}
}

func TestUntrustedKeyAndUnsigned(t *testing.T) {
	key, other := kittest.NewKey(t), kittest.NewKey(t)
	res := kittest.Build(t, key, "a", "1.0.0", 1000, t.TempDir())
	_, err := verify.File(context.Background(), res.Path, opts(other))
	wantCode(t, err, errdef.ExitSignature, "manifest.json.sig")

	unsigned := kittest.Build(t, nil, "a", "1.0.0", 1000, t.TempDir())
	_, err = verify.File(context.Background(), unsigned.Path, opts(key))
	wantCode(t, err, errdef.ExitSignature, "not signed")

	_, err = verify.File(context.Background(), res.Path, verify.Options{})
	wantCode(t, err, errdef.ExitSignature, "no trusted key")
}

func TestExpired(t *testing.T) {
	key := kittest.NewKey(t)
	m := kittest.ManifestFor([]kittest.Entry{kittest.File("files/a", []byte("a"))})
	exp := kittest.Created.Add(time.Minute)
	m.ExpiresAt = &exp
	p := (&kittest.Craft{Content: []kittest.Entry{kittest.File("files/a", []byte("a"))}, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), "k"))
	_, err := verify.File(context.Background(), p, opts(key))
	wantCode(t, err, errdef.ExitExpired, "expired")
}

// TestFlippedBytes flips bytes all over a kit: verify must never accept it.
// TestFlippedBytes: with the whole-file signature beside the kit (build
// always writes it for ECDSA keys), flipping any byte fails with 2, 5 or 11.
// Without it, zstd's own redundancy (a window descriptor, unused bits of an
// entropy table, the seek table's footer) lets a few flips decode to the
// very same tar stream: verify may then pass, but only when every byte the
// site would install is unchanged.
func TestFlippedBytes(t *testing.T) {
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "a", "1.0.0", 300<<10, t.TempDir())
	orig, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	want := decoded(t, orig)
	sig, _ := os.ReadFile(res.Path + ".sig")
	dir := t.TempDir()
	p := filepath.Join(dir, "k.kit.tar.zst")
	os.WriteFile(p+".sig", sig, 0o644)
	step := len(orig)/400 + 1
	if testing.Short() {
		step = len(orig)/40 + 1
	}
	for i := 0; i < len(orig); i += step {
		for _, withSig := range []bool{true, false} {
			b := append([]byte(nil), orig...)
			b[i] ^= 0x40
			os.WriteFile(p, b, 0o644)
			if !withSig {
				os.Remove(p + ".sig")
			}
			_, err := verify.File(context.Background(), p, opts(key))
			code := errdef.ExitCode(err)
			switch {
			case err == nil && !withSig:
				if !bytes.Equal(decoded(t, b), want) {
					t.Fatalf("byte %d of %d flipped: verify passed but the tar stream changed", i, len(orig))
				}
			case code != 2 && code != 5 && code != 11:
				t.Fatalf("byte %d of %d flipped (file sig %v): exit %d (%v)", i, len(orig), withSig, code, err)
			}
			os.WriteFile(p+".sig", sig, 0o644)
		}
	}
}

// decoded returns the tar stream of a kit, as stock zstd would decode it.
func decoded(t *testing.T, kit []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(kit))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCode(t *testing.T, err error, code int, substr string) {
	t.Helper()
	if got := errdef.ExitCode(err); got != code {
		t.Fatalf("exit %d, want %d (err %v)", got, code, err)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
}

// with returns e with its header edited.
func with(e kittest.Entry, edit func(*tar.Header)) kittest.Entry {
	edit(&e.Header)
	return e
}

// TestHostileKits is the table of hostile inputs the kit format refuses
// (docs/kit-format.md), each signed by the trusted key: a signature does not
// excuse an unsafe kit.
func TestHostileKits(t *testing.T) {
	key := kittest.NewKey(t)
	a := kittest.File("files/a", []byte("alpha"))
	b := kittest.File("files/b", []byte("bravo"))
	hdr := func(typ byte, name, link string) kittest.Entry {
		return kittest.Entry{Header: tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644, ModTime: kittest.Created}}
	}
	listed := func(entries ...kittest.Entry) *manifest.Manifest { return kittest.ManifestFor(entries) }
	bigManifest := bytes.Repeat([]byte(" "), manifest.MaxManifestSize+1)
	dotdot := listed(kittest.File("../x", []byte("x")))

	cases := []struct {
		name   string
		craft  kittest.Craft
		code   int
		substr string
	}{
		{"manifest lists ../x", kittest.Craft{Content: []kittest.Entry{kittest.File("../x", []byte("x"))}, Manifest: dotdot}, 11, `"../x"`},
		{"entry ../x", kittest.Craft{Content: []kittest.Entry{a, kittest.File("../x", []byte("x"))}, Manifest: listed(a)}, 11, `"../x"`},
		{"absolute entry", kittest.Craft{Content: []kittest.Entry{kittest.File("/etc/passwd", []byte("x"))}, Manifest: listed(a)}, 11, `"/etc/passwd"`},
		{"backslash", kittest.Craft{Content: []kittest.Entry{kittest.File(`files\a`, []byte("x"))}, Manifest: listed(a)}, 11, "backslash"},
		{"control character", kittest.Craft{Content: []kittest.Entry{kittest.File("files/\x1b[2Ja", []byte("x"))}, Manifest: listed(a)}, 11, "control"},
		{"case collision", kittest.Craft{Content: []kittest.Entry{a, kittest.File("files/A", []byte("alpha"))}, Manifest: listed(a)}, 11, `"files/A": not listed`},
		{"symlink listed", kittest.Craft{Content: []kittest.Entry{hdr(tar.TypeSymlink, "files/a", "/etc/passwd")}, Manifest: listed(a)}, 11, "symbolic link"},
		{"hard link", kittest.Craft{Content: []kittest.Entry{hdr(tar.TypeLink, "files/a", "SHA256SUMS")}, Manifest: listed(a)}, 11, "hard link"},
		{"device", kittest.Craft{Content: []kittest.Entry{hdr(tar.TypeChar, "files/a", "")}, Manifest: listed(a)}, 11, "device"},
		{"fifo", kittest.Craft{Content: []kittest.Entry{hdr(tar.TypeFifo, "files/a", "")}, Manifest: listed(a)}, 11, "FIFO"},
		{"not listed", kittest.Craft{Content: []kittest.Entry{a, b}, Manifest: listed(a)}, 11, `"files/b": not listed`},
		{"listed but missing", kittest.Craft{Content: []kittest.Entry{a}, Manifest: listed(a, b)}, 11, `"files/b": listed in the manifest but missing`},
		{"duplicate", kittest.Craft{Content: []kittest.Entry{a, a}, Manifest: listed(a)}, 11, `"files/a": appears twice`},
		{"repeated before the last", kittest.Craft{Content: []kittest.Entry{a, a, b}, Manifest: listed(a, b)}, 11, `"files/a": appears twice or out of order`},
		{"out of order", kittest.Craft{Content: []kittest.Entry{b, a}, Manifest: listed(a, b)}, 11, `"files/a": listed in the manifest but missing from the kit (found "files/b" in its place)`},
		{"not listed, in the middle", kittest.Craft{Content: []kittest.Entry{a, kittest.File("files/ab", []byte("x")), b}, Manifest: listed(a, b)}, 11, `"files/ab": not listed`},
		{"size differs", kittest.Craft{Content: []kittest.Entry{kittest.File("files/a", []byte("alph"))}, Manifest: listed(a)}, 2, `"files/a": size 4`},
		{"content differs", kittest.Craft{Content: []kittest.Entry{kittest.File("files/a", []byte("alphA"))}, Manifest: listed(a)}, 2, `"files/a": sha256`},
		{"zstd bomb after the archive", kittest.Craft{Content: []kittest.Entry{a}, Manifest: listed(a), After: make([]byte, 64<<20)}, 11, "larger than its manifest declares"},
		{"trailing data in the stream", kittest.Craft{Content: []kittest.Entry{a}, Manifest: listed(a), After: []byte("garbage")}, 11, "after the end of the archive"},
		{"manifest over the limit", kittest.Craft{Head: []kittest.Entry{kittest.File(kitfile.ManifestPath, bigManifest)}}, 11, "over the limit"},
		{"no manifest first", kittest.Craft{Head: []kittest.Entry{a}}, 11, "offkit/manifest.json"},
		// Issue 6, finding 5: headers the writer never produces. The
		// manifest is the genuine one: its sha256s cover the contents only.
		{"setuid re-tar", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.Mode = 0o4755 })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"mode 0755", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.Mode = 0o755 })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"owner uid", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.Uid = 1000 })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"owner name", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.Uname = "root" })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"xattr", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "x"} })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"unknown PAX record", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.PAXRecords = map[string]string{"comment": "hi"} })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"hidden PAX bytes", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.PAXRecords = map[string]string{"comment": strings.Repeat("x", 40<<10)} })}, Manifest: listed(a)}, 11, "header over"},
		{"other mtime", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.ModTime = h.ModTime.Add(time.Hour) })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"sub-second mtime", kittest.Craft{Content: []kittest.Entry{with(a, func(h *tar.Header) { h.ModTime = h.ModTime.Add(time.Millisecond); h.Format = tar.FormatPAX })}, Manifest: listed(a)}, 11, "header is not what offkit writes"},
		{"directory entry", kittest.Craft{Content: []kittest.Entry{{Header: tar.Header{Typeflag: tar.TypeDir, Name: "files/", Mode: 0o755, ModTime: kittest.Created}}, a}, Manifest: listed(a)}, 11, "only regular files"},
		{"data in padding", kittest.Craft{Content: []kittest.Entry{a, b}, Manifest: listed(a, b), Tar: func(tb []byte) []byte {
			i := bytes.Index(tb, []byte("alpha"))
			tb[i+len("alpha")] = 'X'
			return tb
		}}, 11, "padding"},
		{"data in a header field", kittest.Craft{Content: []kittest.Entry{a}, Manifest: listed(a), Tar: func(tb []byte) []byte {
			i := bytes.Index(tb, []byte("files/a\x00"))
			h := tb[i : i+512]
			h[505] = 'X' // unused bytes at the end of files/a's USTAR header
			copy(h[148:156], "        ")
			var sum int
			for _, c := range h {
				sum += int(c)
			}
			copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
			return tb
		}}, 11, "header is not what offkit writes"},
		{"NFD twin", kittest.Craft{Content: []kittest.Entry{kittest.File("files/caf\u00e9", []byte("x")), kittest.File("files/cafe\u0301", []byte("x"))}, Manifest: listed(kittest.File("files/caf\u00e9", []byte("x")))}, 11, "\"files/cafe\u0301\": not listed"},
		{"long s twin", kittest.Craft{Content: []kittest.Entry{kittest.File("files/ss", []byte("x")), kittest.File("files/\u017fs", []byte("x"))}, Manifest: listed(kittest.File("files/ss", []byte("x")))}, 11, "\"files/\u017fs\": not listed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.craft.Key = key
			p := c.craft.Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
			_, err := verify.File(context.Background(), p, opts(key))
			wantCode(t, err, c.code, c.substr)
		})
	}
}

func TestTerabyteDeclaredSize(t *testing.T) {
	key := kittest.NewKey(t)
	huge := kittest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "files/a", Size: 1 << 40, Mode: 0o644, ModTime: kittest.Created}}
	m := kittest.ManifestFor(nil)
	m.Entries = []manifest.Entry{{Path: "files/a", Size: 1 << 40, SHA256: strings.Repeat("0", 64), Role: manifest.RoleFile}}
	// The tar writer refuses to close a short entry, so write the head and
	// the header by hand: the kit is a truncated terabyte.
	var craft kittest.Craft
	craft.Manifest, craft.Key = m, key
	p := filepath.Join(t.TempDir(), "k.kit.tar.zst")
	func() {
		defer func() { recover() }()
		craft.Content = []kittest.Entry{huge}
		craft.Write(t, p)
	}()
	if _, err := os.Stat(p); err != nil {
		t.Skip("could not craft")
	}
	_, err := verify.File(context.Background(), p, opts(key))
	if code := errdef.ExitCode(err); code != 11 && code != 2 {
		t.Fatalf("exit %d: %v", code, err)
	}
}

func TestTruncatedAndTrailingGarbage(t *testing.T) {
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "a", "1.0.0", 600<<10, t.TempDir())
	orig, _ := os.ReadFile(res.Path)
	dir := t.TempDir()
	p := filepath.Join(dir, "k.kit.tar.zst")
	for _, n := range []int{len(orig) / 2, len(orig) - 20, 100} {
		os.WriteFile(p, orig[:n], 0o644)
		_, err := verify.File(context.Background(), p, opts(key))
		if code := errdef.ExitCode(err); code != 11 && code != 5 {
			t.Fatalf("truncated at %d: exit %d (%v)", n, code, err)
		}
	}
	os.WriteFile(p, append(append([]byte(nil), orig...), "trailing garbage"...), 0o644)
	_, err := verify.File(context.Background(), p, opts(key))
	if code := errdef.ExitCode(err); code != 11 {
		t.Fatalf("trailing garbage: exit %d (%v)", code, err)
	}
}

// TestForgedKitFailsEarly: a kit whose manifest signature is wrong is
// refused before its content is read.
func TestForgedKitFailsEarly(t *testing.T) {
	key, other := kittest.NewKey(t), kittest.NewKey(t)
	res := kittest.Build(t, other, "a", "1.0.0", 8<<20, t.TempDir())
	f, _ := os.Open(res.Path)
	defer f.Close()
	cr := &countingReader{r: f}
	_, err := verify.Stream(context.Background(), cr, opts(key))
	wantCode(t, err, errdef.ExitSignature, "signature")
	if cr.n > 1<<20 {
		t.Fatalf("read %d bytes before refusing a forged kit", cr.n)
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestManifestClaims: what the manifest says about its own kit must be true
// (issue 6, finding 5): the signer it names signed it, and its entries carry
// its createdAt.
func TestManifestClaims(t *testing.T) {
	key, other := kittest.NewKey(t), kittest.NewKey(t)
	a := kittest.File("files/a", []byte("alpha"))
	lying := kittest.ManifestFor([]kittest.Entry{a})
	lying.Signer = &manifest.Signer{KeyID: other.Public.KeyID()}
	p := (&kittest.Craft{Content: []kittest.Entry{a}, Manifest: lying, Key: key}).Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
	_, err := verify.File(context.Background(), p, opts(key))
	wantCode(t, err, 5, "names signer "+other.Public.KeyID())

	dated := kittest.ManifestFor([]kittest.Entry{a})
	dated.CreatedAt = kittest.Created.Add(-time.Hour)
	p = (&kittest.Craft{Content: []kittest.Entry{a}, Manifest: dated, Key: key}).Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
	_, err = verify.File(context.Background(), p, opts(key))
	wantCode(t, err, 11, "entries are dated")
}

// TestNotARegularFile: a FIFO (or a device, or a folder) is refused at once,
// not waited on (issue 6, finding 6).
func TestNotARegularFile(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "k.kit.tar.zst")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	// fifotest.Guard makes wrong code that waits for a writer fail the
	// test instead of hanging it.
	done := fifotest.Guard(t, fifo)
	_, err := verify.File(context.Background(), fifo, opts(key))
	wantCode(t, err, 11, "not a regular file")
	_, err = kitfile.ReadHead(fifo)
	done()
	wantCode(t, err, 11, "not a regular file")
	_, err = verify.File(context.Background(), dir, opts(key))
	wantCode(t, err, 11, "not a regular file")
	// A FIFO where the whole-file signature belongs is refused as well.
	good := kittest.Build(t, key, "good", "1.0.0", 1000, t.TempDir())
	os.Remove(good.SignaturePath)
	if err := syscall.Mkfifo(good.SignaturePath, 0o644); err != nil {
		t.Fatal(err)
	}
	done = fifotest.Guard(t, good.SignaturePath)
	_, err = verify.File(context.Background(), good.Path, opts(key))
	done()
	wantCode(t, err, 11, "not a regular file")
}

// TestDamagedFrame: damage in transit (a frame that fails its checksum) is
// exit 2 naming the entries the damaged frame carries, with or without a
// seek table; 11 stays for hostile input (issue 7, section 2).
func TestDamagedFrame(t *testing.T) {
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "damaged", "1.0.0", 1<<20, t.TempDir())
	os.Remove(res.SignaturePath)
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := seekable.ReadSeekTable(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(frames) < 4 {
		t.Fatalf("want a kit of several frames: %d frames, %v", len(frames), err)
	}
	// The last byte of frame 2 belongs to its content checksum.
	f := frames[2]
	b[f.Offset+f.CompressedSize-1] ^= 0x55
	if err := os.WriteFile(res.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = verify.File(context.Background(), res.Path, opts(key))
	wantCode(t, err, 2, `frame 2 is damaged`)
	wantCode(t, err, 2, `"files/damaged/big.bin"`)

	// Without the seek table (a kit joined from a pipe), the entry being
	// read when the damage shows is named.
	end := f.Offset
	for _, g := range frames[2:] {
		end += g.CompressedSize
	}
	_, err = verify.Stream(context.Background(), bytes.NewReader(b[:end]), opts(key))
	wantCode(t, err, 2, "the zstd stream is damaged")
	wantCode(t, err, 2, `"files/damaged/big.bin"`)
}
