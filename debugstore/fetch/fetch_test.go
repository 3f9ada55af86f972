package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/debugstore/fetch"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// counting counts the bytes read from the kit file.
type counting struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *counting) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func open(t *testing.T, path string) (*counting, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return &counting{r: f}, st.Size()
}

func opts(k *kittest.Key) fetch.Options {
	return fetch.Options{Keys: []*sign.PublicKey{k.Public}, Now: kittest.Created.Add(time.Hour)}
}

// One debug file of a kit of 64 files in 200-odd frames: the bytes are the
// file's, and only the frames of the head and of the entry are read and
// decoded: a few percent of the kit.
func TestFromKitReadsLittle(t *testing.T) {
	key := kittest.NewKey(t)
	res, files := kittest.ManyDebugKit(t, key, 64, func(i int) int64 { return 100<<10 + int64(i)*1000 }, 32<<10)
	c, size := open(t, res.Path)
	for _, i := range []int{0, 31, 63} {
		id := kittest.IDOf(i)
		before := c.n.Load()
		var out bytes.Buffer
		r, err := fetch.FromKit(context.Background(), c, size, "k", id, opts(key), &out)
		if err != nil {
			t.Fatal(err)
		}
		read := c.n.Load() - before
		if !bytes.Equal(out.Bytes(), files[id]) {
			t.Fatalf("file %d: %d bytes, not the file's %d", i, out.Len(), len(files[id]))
		}
		sum := sha256.Sum256(files[id])
		if r.SHA256 != hex.EncodeToString(sum[:]) || r.Size != int64(len(files[id])) || r.Entry != debugstore.DebugPath(id) || !r.Seekable {
			t.Errorf("file %d: result %+v", i, r)
		}
		if r.Frames < 200 || r.FramesDecoded > 10 {
			t.Errorf("file %d: %d of %d frames decoded", i, r.FramesDecoded, r.Frames)
		}
		if read*20 > size {
			t.Errorf("file %d: read %d of the kit's %d bytes, over 5%%", i, read, size)
		}
		t.Logf("file %d: read %d of %d bytes (%.2f%%), %d of %d frames", i, read, size, 100*float64(read)/float64(size), r.FramesDecoded, r.Frames)
	}
	var out bytes.Buffer
	if _, err := fetch.FromKit(context.Background(), c, size, "k", strings.Repeat("ee", 20), opts(key), &out); errdef.ExitCode(err) != 1 || out.Len() != 0 {
		t.Errorf("an id the kit does not carry: %v", err)
	}
	// Another key: refused before any content frame is read.
	other := kittest.NewKey(t)
	before := c.n.Load()
	if _, err := fetch.FromKit(context.Background(), c, size, "k", kittest.IDOf(5), opts(other), &out); errdef.ExitCode(err) != 5 || out.Len() != 0 {
		t.Errorf("another key: %v", err)
	}
	if read := c.n.Load() - before; read*50 > size {
		t.Errorf("another key: read %d of %d bytes before refusing", read, size)
	}
}

// A kit recompressed as one plain zstd stream (as stock zstd writes it)
// has no seek table: it is decoded from the start, and the bytes are the
// same.
func TestFromKitWithoutSeekTable(t *testing.T) {
	key := kittest.NewKey(t)
	res, files := kittest.ManyDebugKit(t, key, 8, func(int) int64 { return 50 << 10 }, 32<<10)
	in, err := os.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dec, err := zstd.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	re := filepath.Join(t.TempDir(), "re.kit.tar.zst")
	f, _ := os.Create(re)
	enc, _ := zstd.NewWriter(f)
	if _, err := io.Copy(enc, dec); err != nil {
		t.Fatal(err)
	}
	enc.Close()
	f.Close()
	c, size := open(t, re)
	if _, err := seekable.ReadSeekTable(c, size); err != seekable.ErrNoSeekTable {
		t.Fatalf("recompressed: %v", err)
	}
	id := kittest.IDOf(6)
	var out bytes.Buffer
	r, err := fetch.FromKit(context.Background(), c, size, "re", id, opts(key), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), files[id]) || r.Seekable {
		t.Errorf("%+v; bytes equal %v", r, bytes.Equal(out.Bytes(), files[id]))
	}
}

// Damage and lies, each with its exit code: a flipped byte in the entry's
// frames (2), a signed manifest whose sha256 is not the bytes' (2), a
// .build-id file whose own build id is not its name (11), a truncated kit
// (11).
func TestFromKitHostile(t *testing.T) {
	key := kittest.NewKey(t)
	res, _ := kittest.ManyDebugKit(t, key, 16, func(int) int64 { return 64 << 10 }, 32<<10)
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := seekable.ReadSeekTable(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Damage the middle of every frame past the first two (the head).
	damaged := bytes.Clone(b)
	for _, f := range frames[2:] {
		damaged[f.Offset+f.CompressedSize/2] ^= 0x55
	}
	id := kittest.IDOf(9)
	fetchBytes := func(kit []byte, id string) (*bytes.Buffer, error) {
		var out bytes.Buffer
		_, err := fetch.FromKit(context.Background(), bytes.NewReader(kit), int64(len(kit)), "k", id, opts(key), &out)
		return &out, err
	}
	if _, err := fetchBytes(damaged, id); errdef.ExitCode(err) != 2 {
		t.Errorf("damaged frames: exit %d: %v", errdef.ExitCode(err), err)
	}
	// Truncated: the seek table goes, the stream ends early.
	if _, err := fetchBytes(b[:len(b)/2], id); errdef.ExitCode(err) != 11 {
		t.Errorf("truncated: exit %d: %v", errdef.ExitCode(err), err)
	}

	a, other := strings.Repeat("a1", 20), strings.Repeat("b2", 20)
	dir := t.TempDir()
	liar := (&kittest.DebugCraft{Key: key, Files: map[string][]byte{
		"debug/.build-id/b2/" + other[2:] + ".debug": kittest.DebugELF(t, a, 1000),
	}}).Write(t, dir)
	lb, _ := os.ReadFile(liar)
	if out, err := fetchBytes(lb, other); errdef.ExitCode(err) != 11 || !strings.Contains(err.Error(), "its build id is "+a) {
		t.Errorf("a file named for another id: exit %d: %v (%d bytes written)", errdef.ExitCode(err), err, out.Len())
	}
	// The signed manifest's sha256 is another file's of the same size.
	elf := kittest.DebugELF(t, a, 1000)
	content := []kittest.Entry{kittest.File("debug/.build-id/a1/"+a[2:]+".debug", elf)}
	m := kittest.ManifestFor(content)
	sum := sha256.Sum256(append(elf[:len(elf)-1:len(elf)-1], elf[len(elf)-1]^1))
	m.Entries[0].SHA256 = hex.EncodeToString(sum[:])
	ws, _ := os.ReadFile((&kittest.Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), "k")))
	if _, err := fetchBytes(ws, a); errdef.ExitCode(err) != 2 {
		t.Errorf("bytes that are not the signed ones: exit %d: %v", errdef.ExitCode(err), err)
	}
	m.Entries[0].SHA256 = hex.EncodeToString(func() []byte { s := sha256.Sum256(elf); return s[:] }())
	ok, _ := os.ReadFile((&kittest.Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), "k")))
	if out, err := fetchBytes(ok, a); err != nil || !bytes.Equal(out.Bytes(), elf) {
		t.Errorf("the same kit, honest: %v", err)
	}
}

// From the site: the installed generation's file, byte for byte.
func TestFromSite(t *testing.T) {
	key := kittest.NewKey(t)
	res, files := kittest.ManyDebugKit(t, key, 3, func(int) int64 { return 10 << 10 }, 32<<10)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: opts(key).Keys, Now: opts(key).Now}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	id := kittest.IDOf(2)
	var out bytes.Buffer
	r, err := fetch.FromSite(context.Background(), root, id, fetch.Options{}, &out)
	if err != nil || !bytes.Equal(out.Bytes(), files[id]) || r.Entry != debugstore.DebugPath(id) {
		t.Fatalf("%+v, %v", r, err)
	}
	if _, err := fetch.FromSite(context.Background(), root, strings.Repeat("ee", 20), fetch.Options{}, &out); errdef.ExitCode(err) != 1 {
		t.Errorf("unknown id: %v", err)
	}
}
