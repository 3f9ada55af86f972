package push_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/push"
)

// requestLog records, in order, the writes a target registry receives and
// the marks the test adds.
type requestLog struct {
	mu  sync.Mutex
	log []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.log...)
}

func (l *requestLog) record(tg *target) {
	tg.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodPut:
			l.add("manifest " + r.URL.Path)
		case strings.Contains(r.URL.Path, "/blobs/uploads") && r.Method == http.MethodPut:
			l.add("blob " + r.URL.Query().Get("digest"))
		case strings.Contains(r.URL.Path, "/blobs/uploads") && r.Method == http.MethodPost && r.URL.Query().Get("mount") != "":
			l.add("mount " + r.URL.Query().Get("mount"))
		}
		return false
	}
}

// TestPushKitOrder: pushing a kit overlaps verification and upload, but no
// manifest (or tag: a tag is a manifest PUT by tag) is pushed before every
// byte of the kit verified: none is in the log before the mark the last
// entry's verification makes.
func TestPushKitOrder(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	var l requestLog
	l.record(tg)
	v := f.verifyOptions()
	v.Progress = func(done, total int64) {
		if done == total {
			l.add("verified")
		}
	}
	_, err := push.Kit(context.Background(), f.kit, v, push.Options{To: tg.host, PlainHTTP: true, TempDir: t.TempDir()})
	must(t, err)
	f.checkPulled(t, tg.host)
	log := l.all()
	mark := -1
	manifests := 0
	for i, s := range log {
		switch {
		case s == "verified":
			mark = i
		case strings.HasPrefix(s, "manifest "):
			manifests++
			if mark < 0 {
				t.Errorf("%s pushed before the kit verified (log %v)", s, log)
			}
		}
	}
	if mark < 0 || manifests == 0 {
		t.Fatalf("log %v: want the mark, then manifests", log)
	}
}

// TestPushKitLastBlobCorrupt: a kit signed over a genuine manifest whose
// last image blob (a layer) was altered on the way. Blobs that verified
// before it may be uploaded, but the altered one never is, and no manifest
// and no tag is ever pushed; the push fails with the mismatch.
func TestPushKitLastBlobCorrupt(t *testing.T) {
	f := newFixture(t)
	m, entries := readKit(t, f.kit)
	last := -1
	for i, e := range m.Entries {
		if strings.HasPrefix(e.Path, "images/blobs/sha256/") && e.MediaType == "" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("no layer blob in the fixture kit")
	}
	var content []kittest.Entry
	for _, e := range m.Entries {
		data := entries[e.Path]
		if e.Path == m.Entries[last].Path {
			data = append([]byte(nil), data...)
			data[len(data)/2] ^= 0xff
		}
		content = append(content, kittest.File(e.Path, data))
	}
	bad := (&kittest.Craft{Content: content, Manifest: m, Key: f.key}).Write(t, filepath.Join(t.TempDir(), "app-1.0.0.kit.tar.zst"))

	tg := newTarget(t)
	var l requestLog
	l.record(tg)
	tmp := t.TempDir()
	_, err := push.Kit(context.Background(), bad, f.verifyOptions(), push.Options{To: tg.host, PlainHTTP: true, TempDir: tmp})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), m.Entries[last].Path) {
		t.Fatalf("push of a kit with its last blob altered: %v, want a mismatch naming %s", err, m.Entries[last].Path)
	}
	corrupt := "sha256:" + strings.TrimPrefix(m.Entries[last].Path, "images/blobs/sha256/")
	t.Logf("writes before the failure: %v", l.all())
	for _, s := range l.all() {
		if strings.HasPrefix(s, "manifest ") || strings.HasSuffix(s, corrupt) {
			t.Errorf("pushed %s for a kit that failed verification", s)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp folder not removed: %v", left)
	}
}

// readKit returns the manifest and the content entries of a kit.
func readKit(t *testing.T, path string) (*manifest.Manifest, map[string][]byte) {
	t.Helper()
	fh, err := os.Open(path)
	must(t, err)
	defer fh.Close()
	zr, err := zstd.NewReader(fh)
	must(t, err)
	defer zr.Close()
	tr := tar.NewReader(zr)
	var m *manifest.Manifest
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		switch h.Name {
		case kitfile.ManifestPath:
			m, err = manifest.Parse(b)
			must(t, err)
		case kitfile.SignaturePath, kitfile.SumsPath:
		default:
			files[h.Name] = b
		}
	}
	return m, files
}
