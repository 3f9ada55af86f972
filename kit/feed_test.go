package kit

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// feedSources writes files of many sizes (empty, small, across a chunk,
// several chunks) and lists them as build does, with their digests.
func feedSources(t *testing.T) []source {
	t.Helper()
	dir := t.TempDir()
	var srcs []source
	sizes := []int{0, 1, 100, feedChunk - 1, feedChunk, feedChunk + 1, 3*feedChunk + 17}
	for i := range 300 {
		sizes = append(sizes, (i*7919)%5000+1)
	}
	// An empty file last: packing it takes no byte of the stream, so only
	// the stream's end can tell that it failed.
	sizes = append(sizes, 0)
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i)}, n)
		for j := range data {
			data[j] ^= byte(j / 251)
		}
		name := filepath.Join(dir, fmt.Sprintf("f%04d", i))
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		srcs = append(srcs, source{
			entry: manifest.Entry{Path: fmt.Sprintf("files/f%04d", i), Size: int64(n), SHA256: hex.EncodeToString(sum[:]), Role: manifest.RoleFile},
			file:  name,
		})
	}
	return srcs
}

// packFed packs srcs through a feed into a tar stream in zstd frames.
func packFed(srcs []source, w io.Writer) error {
	kw, err := kitfile.NewWriter(w, time.Unix(0, 0), kitfile.WriterOptions{Level: 3, FrameSize: 1 << 20})
	if err != nil {
		return err
	}
	defer kw.Close()
	f := startFeed(context.Background(), srcs)
	defer f.stop()
	for _, s := range srcs {
		if err := addFed(kw, s.entry.Path, s.entry.Size, f); err != nil {
			return err
		}
	}
	if err := f.end(); err != nil {
		return err
	}
	return kw.Close()
}

// The feed hands the sources over in chunks that hold many files end to
// end; every entry must still come out with exactly its own bytes.
func TestFeedPacksEachSourceWhole(t *testing.T) {
	srcs := feedSources(t)
	var out bytes.Buffer
	if err := packFed(srcs, &out); err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	for _, s := range srcs {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("before %s: %v", s.entry.Path, err)
		}
		got, _ := io.ReadAll(tr)
		want, _ := os.ReadFile(s.file)
		if h.Name != s.entry.Path || !bytes.Equal(got, want) {
			t.Fatalf("entry %s (%d bytes): want %s (%d bytes)", h.Name, len(got), s.entry.Path, len(want))
		}
	}
	if h, err := tr.Next(); err != io.EOF {
		t.Fatalf("after the last entry: %v, %v", h, err)
	}
}

// A source that changed since it was listed fails the build, naming it,
// wherever it is in the stream and whatever changed.
func TestFeedRefusesChangedSources(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(string) error
		want   string
	}{
		{"same size, other bytes", func(p string) error {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, "sha256"},
		{"grown", func(p string) error {
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, append(b, 'x'), 0o644)
		}, ""},
		{"shrunk", func(p string) error {
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, b[:len(b)-1], 0o644)
		}, ""},
		{"removed", os.Remove, "no such file"},
	} {
		for _, at := range []int{1, 5, 6, 150, -2, -1} {
			t.Run(fmt.Sprintf("%s/%d", c.name, at), func(t *testing.T) {
				srcs := feedSources(t)
				if at < 0 {
					at += len(srcs)
				}
				s := srcs[at]
				if s.entry.Size == 0 && (c.name == "same size, other bytes" || c.name == "shrunk") {
					t.Skip("an empty file")
				}
				if err := c.change(s.file); err != nil {
					t.Fatal(err)
				}
				err := packFed(srcs, io.Discard)
				if err == nil {
					t.Fatalf("%s of %s: packed", c.name, s.entry.Path)
				}
				if !strings.Contains(err.Error(), s.file) && !strings.Contains(err.Error(), s.entry.Path) {
					t.Fatalf("error %q does not name %s", err, s.file)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %q, want %q in it", err, c.want)
				}
			})
		}
	}
}

// When every byte before it has been handed over, a last source listed
// empty that has grown since is caught by the stream's end alone.
func TestFeedEndCatchesTheLastSource(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	data := bytes.Repeat([]byte("k"), feedChunk) // fills a chunk exactly
	if err := os.WriteFile(full, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	grown := filepath.Join(dir, "grown")
	if err := os.WriteFile(grown, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	srcs := []source{
		{entry: manifest.Entry{Path: "files/full", Size: feedChunk, SHA256: hex.EncodeToString(sum[:])}, file: full},
		{entry: manifest.Entry{Path: "files/grown", SHA256: hex.EncodeToString(empty[:])}, file: grown},
	}
	if err := packFed(srcs, io.Discard); err == nil || !strings.Contains(err.Error(), "grown") {
		t.Fatalf("error %v, want the grown last source named", err)
	}
}

// A listed file swapped for a named pipe before it is hashed or packed is
// refused, naming it, and never waited on.
func TestFeedRefusesANamedPipe(t *testing.T) {
	srcs := feedSources(t)
	s := srcs[7]
	fifotest.Replace(t, s.file)
	done := fifotest.Guard(t, s.file)
	err := packFed(srcs, io.Discard)
	done()
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), s.file) || !strings.Contains(err.Error(), "pipe") {
		t.Fatalf("packing: err = %v, want a refusal of the named pipe %s", err, s.file)
	}
	hs := startHasher()
	defer hs.stop()
	for _, s := range srcs {
		hs.add(s.file)
	}
	done = fifotest.Guard(t, s.file)
	_, err = hs.wait()
	done()
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), s.file) {
		t.Fatalf("hashing: err = %v, want a refusal of the named pipe %s", err, s.file)
	}
}

// Listing stops hashing when the build is cancelled, with the context's
// error, and leaves nothing in the output folder.
func TestCollectFilesStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), bytes.Repeat([]byte{byte(i)}, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Unix(0, 0)
	spec := &manifest.Spec{Name: "cancel", Version: "1.0.0", CreatedAt: &created, Files: []manifest.FileSource{{Src: dir}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := collectFiles(ctx, spec, "", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("collectFiles: err = %v, want context.Canceled", err)
	}
	out := t.TempDir()
	if _, err := Build(ctx, spec, BuildOptions{OutDir: out}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build: err = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("a cancelled build left %v", left)
	}
}
