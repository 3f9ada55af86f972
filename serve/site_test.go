package serve

import (
	"context"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// testSite is a site root that tests install hand-made kits into, signed
// with a test key: only their content is hostile.
type testSite struct {
	root string
	key  *kittest.Key
}

func newTestSite(t *testing.T) *testSite {
	return &testSite{root: filepath.Join(t.TempDir(), "site"), key: siteKey(t)}
}

// siteKey is one test key for all the test sites (making a key is slow).
var testKey struct {
	once sync.Once
	key  *kittest.Key
}

func siteKey(t *testing.T) *kittest.Key {
	testKey.once.Do(func() { testKey.key = kittest.NewKey(t) })
	if testKey.key == nil {
		t.Fatal("no test key")
	}
	return testKey.key
}

// kit writes kit name at version holding files (entry path → content),
// signed with the site's key.
func (ts *testSite) kit(t *testing.T, name, version string, files map[string]string) string {
	t.Helper()
	var content []kittest.Entry
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		content = append(content, kittest.File(p, []byte(files[p])))
	}
	m := kittest.ManifestFor(content)
	m.Name, m.Version = name, version
	for i := range m.Entries {
		m.Entries[i].Role = kittest.RoleOf(m.Entries[i].Path)
	}
	return (&kittest.Craft{Content: content, Manifest: m, Key: ts.key}).Write(t, filepath.Join(t.TempDir(), name+"-"+version+".kit.tar.zst"))
}

func (ts *testSite) open(t *testing.T) *site.Site {
	t.Helper()
	s, err := site.Open(ts.root, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// install installs kitPath; grace is InstallOptions.Grace; force
// activates it even when it is not newer.
func (ts *testSite) install(t *testing.T, kitPath string, grace time.Duration, force ...bool) {
	t.Helper()
	s := ts.open(t)
	defer s.Close()
	o := site.InstallOptions{Keys: []*sign.PublicKey{ts.key.Public}, Now: kittest.Created.Add(time.Hour), Grace: grace}
	if len(force) > 0 && force[0] {
		o.Force, o.Reason = true, "test"
	}
	if _, err := s.Install(context.Background(), kitPath, o); err != nil {
		t.Fatal(err)
	}
}

// server serves the site's rules and dashboards trees.
func (ts *testSite) server() *Server {
	s := New(Config{}, nil)
	view := site.NewView(ts.root)
	for _, part := range []string{"rules", "dashboards"} {
		s.Handle("/"+part+"/", part, Tree(part, view))
	}
	return s
}
