package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
)

// jsonOK runs args with --json, checks exit 0 and that stdout is one
// document valid against schema, with camelCase keys and no null, and
// returns it decoded.
func (r *runner) jsonOK(schema string, args ...string) map[string]any {
	r.t.Helper()
	res := r.ok(append(args, "--json")...)
	checkSchema(r.t, schema, res.stdout)
	checkKeys(r.t, res.stdout)
	var v map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
		r.t.Fatalf("offkit %s --json: %v\n%s", strings.Join(args, " "), err, res.stdout)
	}
	return v
}

var camelCase = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// checkKeys fails unless every object key in the JSON document out is
// camelCase and no value is null (lists are [] when empty).
func checkKeys(t *testing.T, out string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case nil:
			t.Errorf("%s is null in %s", path, out)
		case map[string]any:
			for k, e := range v {
				if !camelCase.MatchString(k) {
					t.Errorf("%s/%s: key is not camelCase", path, k)
				}
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"/"+string(rune('0'+i%10)), e)
			}
		}
	}
	walk("", v)
}

// Every command's --json output matches its schema in schemas/output.
func TestJSONOutput(t *testing.T) {
	r := newRunner(t)
	dir := t.TempDir()

	key := r.jsonOK(schemas.OutputKey, "key", "generate", "--output-key-prefix", filepath.Join(dir, "site"))
	if key["privateKey"] != filepath.Join(dir, "site.key") {
		t.Errorf("key generate: %v", key)
	}
	priv, pub := filepath.Join(dir, "site.key"), filepath.Join(dir, "site.pub")

	src := t.TempDir()
	writeFile(t, filepath.Join(src, "rules", "app.rules.yaml"), kittest.Rules)
	spec := writeFile(t, filepath.Join(src, "kit.yaml"), "name: app\nversion: 1.0.0\ncreatedAt: 2025-01-01T00:00:00Z\nrules:\n  - src: rules/app.rules.yaml\n")
	out := t.TempDir()
	b := r.jsonOK(schemas.OutputBuild, "build", "-f", spec, "-o", out)
	k := filepath.Join(out, "app-1.0.0.kit.tar.zst")
	if b["path"] != k || b["keyId"] != nil || b["signaturePath"] != nil {
		t.Errorf("build of an unsigned kit: %v", b)
	}
	s := r.jsonOK(schemas.OutputSign, "sign", k, "--key", priv)
	if s["path"] != k || s["signaturePath"] != k+".sig" {
		t.Errorf("sign: %v", s)
	}
	in := r.jsonOK(schemas.OutputInspect, "inspect", k, "--key", pub)
	if imgs, _ := in["images"].([]any); imgs == nil || len(imgs) != 0 {
		t.Errorf("inspect of a kit without images: images %v, want []", in["images"])
	}
	v := r.jsonOK(schemas.OutputVerify, "verify", k, "--key", pub)
	if v["verified"] != true || v["name"] != "app" {
		t.Errorf("verify: %v", v)
	}

	root := filepath.Join(t.TempDir(), "site")
	r.jsonOK(schemas.OutputInstall, "install", k, "--root", root, "--key", pub)
	r.jsonOK(schemas.OutputInstall, "install", k, "--root", root, "--key", pub, "--dry-run")

	// A second kit with an image, to push.
	f := &fixture{key: kittest.NewKey(t)}
	f.priv, f.pub = f.key.WriteKeys(t, t.TempDir())
	img := kittest.SiteKit(t, f.key, "images", "2.0.0", nil, "stellaops/app:2").Path
	r.jsonOK(schemas.OutputInstall, "install", img, "--root", root, "--key", f.pub)
	st := r.jsonOK(schemas.OutputStatus, "status", "--root", root)
	if kits, _ := st["kits"].([]any); len(kits) != 2 {
		t.Errorf("status: kits %v", st["kits"])
	}

	iss := newRefreshIssuer(t, false)
	ar := r.jsonOK(authorityRefreshSchema, "authority", "refresh", "--root", root, "--issuer", iss.URL, "--allow-loopback-http")
	if ar["outcome"] != "fresh" {
		t.Errorf("authority refresh: %v", ar)
	}
	if as := r.jsonOK(authorityStatusSchema, "authority", "status", "--root", root); len(as["issuers"].([]any)) != 1 {
		t.Errorf("authority status: %v", as)
	}

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	p := r.jsonOK(schemas.OutputPush, "push", "--root", root, "--to", host+"/site", "--plain-http")
	if imgs, _ := p["images"].([]any); len(imgs) == 0 {
		t.Errorf("push --root: %v", p)
	}
	r.jsonOK(schemas.OutputPush, "push", img, "--key", f.pub, "--to", host+"/kit", "--plain-http")

	rb := r.jsonOK(schemas.OutputRollback, "rollback", "--root", root)
	if kits, _ := rb["kits"].([]any); len(kits) != 1 {
		t.Errorf("rollback: kits %v", rb["kits"])
	}

	ver := r.jsonOK(schemas.OutputVersion, "version")
	if ver["version"] != version || !strings.HasPrefix(ver["goVersion"].(string), "go") {
		t.Errorf("version: %v", ver)
	}
	if res := r.ok("version"); !strings.Contains(res.stdout, "offkit "+version) {
		t.Errorf("version: %s", res.stdout)
	}
}

// serve --json logs JSON lines.
func TestServeJSONLog(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", f.kit(t, "app", "1.0.0"), "--root", root, "--key", f.pub)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r.ctx = ctx
	res := r.run("serve", "--root", root, "--listen", "127.0.0.1:0", "--json")
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	if res.code != 0 || len(lines) < 2 {
		t.Fatalf("serve --json: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	for _, l := range lines {
		checkSchema(t, schemas.OutputLog, l)
	}
	if !strings.Contains(lines[0], `"msg":"serving","address":"http://127.0.0.1:`) {
		t.Errorf("serve --json: first line %s", lines[0])
	}
}
