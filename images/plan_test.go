package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/verifyread"
	"github.com/offkit/offkit/manifest"
)

// TestPlanFilesAreTheLayout checks that the files of a Plan, opened one by
// one as a packer streams them, are the files Write puts in the folder.
func TestPlanFilesAreTheLayout(t *testing.T) {
	host := newRegistry(t)
	d := kittest.Push(t, host+"/stellaops/one:1", randomImage(t, "linux", "amd64"))
	kittest.Push(t, host+"/stellaops/one:sha256-"+d.Hex+".sig", randomImage(t, "", ""))
	kittest.Push(t, host+"/stellaops/two:1", randomImage(t, "linux", "arm64"))
	srcs := []manifest.ImageSource{{Ref: host + "/stellaops/two:1"}, {Ref: host + "/stellaops/one:1"}}
	ctx := context.Background()
	p, err := images.Resolve(ctx, srcs, images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := t.TempDir()
	if err := p.Write(ctx, dir); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir)
	var paths, onDisk []string
	streamed := 0
	for _, f := range p.Files {
		paths = append(paths, f.Path)
		if f.Data == nil {
			streamed++
		}
		rc, err := f.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		sum := sha256.Sum256(b)
		if int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: %d bytes with sha256 %x, plan says %d, %s", f.Path, len(b), sum, f.Size, f.SHA256)
		}
		want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: not the file Write wrote (%v)", f.Path, err)
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return err
	})
	slices.Sort(onDisk)
	if !slices.IsSorted(paths) || !slices.Equal(paths, onDisk) {
		t.Errorf("plan lists %v, folder holds %v", paths, onDisk)
	}
	// Streamed: the two layers of each image, and the config and two
	// layers of the signature manifest (configs of roots are in memory).
	if streamed != 7 {
		t.Errorf("%d blobs streamed, want 7", streamed)
	}
	if len(p.Images) != 2 || p.Images[0].Reference != srcs[0].Ref || len(p.Images[1].Signatures) != 1 {
		t.Errorf("images = %+v", p.Images)
	}
}

// lyingRegistry serves a registry whose blob `bad` is changed by lie once
// lying is on.
type lyingRegistry struct {
	h     http.Handler
	mu    sync.Mutex
	bad   string
	lie   func([]byte) []byte
	lying bool
}

func (l *lyingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	lie := l.lying && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+l.bad)
	l.mu.Unlock()
	if !lie {
		l.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, r)
	body := l.lie(rec.Body.Bytes())
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func TestOpenChecksBlobs(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  func([]byte) []byte
		want verifyread.Problem
	}{
		{"flipped", func(b []byte) []byte { b = slices.Clone(b); b[len(b)/2] ^= 1; return b }, verifyread.Mismatch},
		{"short", func(b []byte) []byte { return b[:len(b)-1] }, verifyread.Short},
		{"long", func(b []byte) []byte { return append(slices.Clone(b), 'x') }, verifyread.Long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := &lyingRegistry{h: registry.New(registry.Logger(log.New(io.Discard, "", 0))), lie: tc.lie}
			s := httptest.NewServer(lr)
			t.Cleanup(s.Close)
			host := strings.TrimPrefix(s.URL, "http://")
			img := randomImage(t, "linux", "amd64")
			kittest.Push(t, host+"/stellaops/one:1", img)
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			bad, err := ls[1].Digest()
			if err != nil {
				t.Fatal(err)
			}
			lr.mu.Lock()
			lr.bad, lr.lying = bad.String(), true
			lr.mu.Unlock()

			ctx := context.Background()
			p, err := images.Resolve(ctx, []manifest.ImageSource{{Ref: host + "/stellaops/one:1"}}, images.Options{})
			if err != nil {
				t.Fatal(err) // the manifests are right: only the layer lies
			}
			defer p.Close()
			f := file(t, p, bad)
			rc, err := f.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			var ve *verifyread.Error
			if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), bad.String()) || !errors.As(err, &ve) || ve.Problem != tc.want {
				t.Fatalf("read %d bytes, err = %v; want %v naming %s, problem %d", n, err, errdef.ErrDigestMismatch, bad, tc.want)
			}
			if n > f.Size {
				t.Errorf("read %d bytes of a blob of %d", n, f.Size)
			}
			_, err = images.Collect(ctx, []manifest.ImageSource{{Ref: host + "/stellaops/one:1"}}, t.TempDir(), images.Options{})
			if !errors.Is(err, errdef.ErrDigestMismatch) {
				t.Errorf("Collect: %v", err)
			}
		})
	}
}

func file(t *testing.T, p *images.Plan, h v1.Hash) *images.File {
	t.Helper()
	for i, f := range p.Files {
		if f.Path == "blobs/sha256/"+h.Hex {
			return &p.Files[i]
		}
	}
	t.Fatalf("no file for %s", h)
	return nil
}
