package site_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// A named pipe put in place of the site's lock, its staging folder or the
// state of the generation served does not hold `offkit status` or a
// server reading the state: the lock counts as not held, staging/ as
// empty (os.ReadDir opens with O_DIRECTORY), the state is refused at once
// (exit 11, naming it).
func TestNamedPipeInSite(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	if _, err := install(t, root, kittest.SiteKit(t, key, "app", "1.0.0", map[string]string{"app/values.yaml": "replicas: 3\n"}).Path, key, nil); err != nil {
		t.Fatal(err)
	}

	lock, staging := filepath.Join(root, ".lock"), filepath.Join(root, "staging")
	fifotest.Replace(t, lock)
	if err := os.RemoveAll(staging); err != nil {
		t.Fatal(err)
	}
	fifotest.Replace(t, staging)
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	done, done2 := fifotest.Guard(t, lock), fifotest.Guard(t, staging)
	snap, err := s.Snapshot()
	done()
	done2()
	s.Close()
	if err != nil || snap.Busy || snap.Interrupted {
		t.Errorf("status with named pipes for the lock and staging/: %+v, %v", snap, err)
	}

	gen, err := os.Readlink(filepath.Join(root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(root, gen, ".offkit")
	if err := os.Chmod(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(meta, "state.json")
	fifotest.Replace(t, state)
	v := site.NewView(root)
	done = fifotest.Guard(t, state)
	_, err = v.State()
	_, _, err2 := v.KitsInstalled()
	done()
	for _, err := range []error{err, err2} {
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "state.json: a named pipe, not a regular file") {
			t.Errorf("state that is a named pipe: %v", err)
		}
	}
}
