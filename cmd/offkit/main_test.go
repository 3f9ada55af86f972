package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
)

// result is what one in-process run of offkit left.
type result struct {
	code           int
	stdout, stderr string
}

// runner runs offkit in-process, as main does, with buffers for stdout and
// stderr.
type runner struct {
	t   *testing.T
	ctx context.Context
	now time.Time
	tty bool
}

func newRunner(t *testing.T) *runner {
	t.Setenv("COSIGN_PASSWORD", "test")    // kittest keys' password
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // push: no credentials of the host
	return &runner{t: t, ctx: context.Background()}
}

func (r *runner) run(args ...string) result {
	r.t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, now: time.Now, drain: defaultDrain, tty: r.tty}
	if !r.now.IsZero() {
		a.now = func() time.Time { return r.now }
	}
	code := a.run(r.ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs args and fails the test unless offkit exits 0.
func (r *runner) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("offkit %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// fails runs args and checks the exit code, that stderr names every want,
// and, run again with --json, that stdout is the error object with that code.
func (r *runner) fails(code int, args []string, want ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != code {
		r.t.Fatalf("offkit %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			r.t.Errorf("offkit %s: stderr does not name %q:\n%s", strings.Join(args, " "), w, res.stderr)
		}
	}
	if res.stdout != "" {
		r.t.Errorf("offkit %s: failed with output on stdout: %s", strings.Join(args, " "), res.stdout)
	}
	jres := r.run(append(args, "--json")...)
	if jres.code != code {
		r.t.Fatalf("offkit %s --json: exit %d, want %d\nstderr: %s", strings.Join(args, " "), jres.code, code, jres.stderr)
	}
	checkSchema(r.t, schemas.OutputError, jres.stdout)
	var e errorOutput
	if err := json.Unmarshal([]byte(jres.stdout), &e); err != nil {
		r.t.Fatalf("offkit %s --json: %v: %s", strings.Join(args, " "), err, jres.stdout)
	}
	if e.ExitCode != code || e.Error == "" {
		r.t.Errorf("offkit %s --json: error object %+v, want exit code %d", strings.Join(args, " "), e, code)
	}
	return res
}

// checkSchema fails the test unless out is one JSON document valid against
// the named output schema.
func checkSchema(t *testing.T, name, out string) {
	t.Helper()
	if err := schemas.Validate(name, []byte(out)); err != nil {
		t.Errorf("output does not match %s: %v\n%s", name, err, out)
	}
}

// fixture is a key pair on disk and kits signed by it.
type fixture struct {
	dir       string
	key       *kittest.Key
	priv, pub string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), key: kittest.NewKey(t)}
	f.priv, f.pub = f.key.WriteKeys(t, f.dir)
	return f
}

// kit builds a small signed kit of name at version and returns its path.
func (f *fixture) kit(t *testing.T, name, version string) string {
	t.Helper()
	return kittest.Build(t, f.key, name, version, 300<<10, t.TempDir()).Path
}

// otherKey writes a second, untrusted public key and returns its path.
func otherKey(t *testing.T) string {
	t.Helper()
	_, pub := kittest.NewKey(t).WriteKeys(t, t.TempDir())
	return pub
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
