package mirrorserve

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
)

// announcedIndex keeps every byte of the exporter's index but the domains
// entries the site does not serve; hostile entries are dropped, a hostile
// index is an error.
func TestAnnouncedIndex(t *testing.T) {
	served := map[string]bool{"primary": true}
	pretty := "{\n  \"schemaVersion\": 1,\n  \"domains\": [\n    {\n      \"id\": \"community\"\n    },\n    {\n      \"id\": \"primary\",\n      \"x\": [1, {\"id\": \"community\"}]\n    }\n  ],\n  \"z\": {\"domains\": [{\"id\": \"community\"}]}\n}\n"
	for _, tc := range []struct{ name, in, want string }{
		{"all served: the same bytes", `{"schemaVersion":1,"domains":[{"id":"primary"}]}`, `{"schemaVersion":1,"domains":[{"id":"primary"}]}`},
		{"compact subset", `{"schemaVersion":1,"domains":[{"id":"primary","displayName":"P"},{"id":"community"}],"exportId":"x"}`,
			`{"schemaVersion":1,"domains":[{"id":"primary","displayName":"P"}],"exportId":"x"}`},
		{"pretty subset, unknown fields and nested domains kept", pretty,
			"{\n  \"schemaVersion\": 1,\n  \"domains\": [\n    {\n      \"id\": \"primary\",\n      \"x\": [1, {\"id\": \"community\"}]\n    }\n  ],\n  \"z\": {\"domains\": [{\"id\": \"community\"}]}\n}\n"},
		{"none served", `{"domains":[{"id":"community"}]}`, `{"domains":[]}`},
		{"entries that are not objects", `{"domains":[ 1 , "primary", null, [], true, {"id":"primary"} , 2.5e3 ]}`, `{"domains":[ {"id":"primary"} ]}`},
		{"duplicate ids: the first kept", `{"domains":[{"id":"primary","n":1},{"id":"primary","n":2}]}`, `{"domains":[{"id":"primary","n":1}]}`},
		{"ids that disagree under case folding", `{"domains":[{"id":"primary","ID":"community"},{"Id":"primary","id":"primary"}]}`, `{"domains":[{"Id":"primary","id":"primary"}]}`},
		{"ids that are not strings, or missing", `{"domains":[{"id":1},{"id":null},{"name":"primary"},{"id":["primary"]}]}`, `{"domains":[]}`},
		{"escaped names", `{"dom\u0061ins":[{"i\u0064":"prim\u0061ry"},{"id":"community"}]}`, `{"dom\u0061ins":[{"i\u0064":"prim\u0061ry"}]}`},
		{"every domains key filtered", `{"domains":[{"id":"community"}],"Domains":[{"id":"community"},{"id":"primary"}]}`, `{"domains":[],"Domains":[{"id":"primary"}]}`},
		{"null domains", `{"domains":null,"schemaVersion":1}`, `{"domains":null,"schemaVersion":1}`},
		{"no domains", `{"schemaVersion":1}`, `{"schemaVersion":1}`},
	} {
		got, err := announcedIndex([]byte(tc.in), served)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("%s: %q is not JSON", tc.name, got)
		}
	}
	for _, in := range []string{
		``, `[]`, `"x"`, `{"domains":[}`, `{"domains":[]} trailing`, `{"domains":{"id":"primary"}}`,
		`{"domains":"primary"}`, `{"domains":1}`, `{"ok":1,"Domains":{}}`,
	} {
		if got, err := announcedIndex([]byte(in), served); err == nil {
			t.Errorf("%q: %q, want an error", in, got)
		}
	}
}

// A large index (10,000 entries, 1 MiB) is filtered in one pass.
func TestAnnouncedIndexLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"schemaVersion":1,"domains":[`)
	served := map[string]bool{}
	for i := range 10000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"d%d","displayName":"%s"}`, i, strings.Repeat("n", 80))
		if i%2 == 0 {
			served[fmt.Sprintf("d%d", i)] = true
		}
	}
	b.WriteString(`]}`)
	got, err := announcedIndex([]byte(b.String()), served)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Domains []struct{ ID string } }
	if err := json.Unmarshal(got, &idx); err != nil || len(idx.Domains) != 5000 {
		t.Fatalf("%d domains, %v", len(idx.Domains), err)
	}
	for _, d := range idx.Domains {
		if !served[d.ID] {
			t.Fatalf("%s announced", d.ID)
		}
	}
}

// editExport rewrites the record of the export kind/id in the generation's
// exports.json: domains (when not nil), files under a dropped domain
// removed, and the index replaced by index (when not nil).
func editExport(t *testing.T, dir, kind, id string, domains []string, drop []string, index []byte) {
	t.Helper()
	ej := filepath.Join(dir, ".offkit", "mirror", "exports.json")
	b, err := os.ReadFile(ej)
	if err != nil {
		t.Fatal(err)
	}
	var se map[string]any
	if err := json.Unmarshal(b, &se); err != nil {
		t.Fatal(err)
	}
	prefix := "mirror/" + kind + "/" + id + "/mirror/"
	for _, x := range se["exports"].([]any) {
		x := x.(map[string]any)
		if x["kind"] != kind || x["exportId"] != id {
			continue
		}
		if domains != nil {
			x["domains"] = domains
		}
		var files []any
		for _, f := range x["files"].([]any) {
			f := f.(map[string]any)
			p := f["path"].(string)
			dropped := false
			for _, d := range drop {
				dropped = dropped || strings.HasPrefix(p, prefix+d+"/")
			}
			if dropped {
				continue
			}
			if p == prefix+"index.json" && index != nil {
				ip := filepath.Join(dir, filepath.FromSlash(p))
				os.Chmod(ip, 0o644)
				if err := os.WriteFile(ip, index, 0o644); err != nil {
					t.Fatal(err)
				}
				f["size"], f["sha256"] = len(index), sum(index)
			}
			files = append(files, f)
		}
		x["files"] = files
	}
	out, _ := json.Marshal(se)
	os.Chmod(ej, 0o644)
	if err := os.WriteFile(ej, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A site holding a subset of an export's domains announces exactly those:
// the Concelier index (its other fields as the exporter wrote them, with
// the ETag and length of the bytes served, 304 and Range working) and the
// Excititor domain list.
func TestIndexAnnouncesServedDomains(t *testing.T) {
	src, files := fixture(t)
	// The kit carried only primary of the Concelier export; its Excititor
	// record names community, whose files it does not carry.
	editExport(t, src.dir, Concelier, newID, []string{"primary"}, []string{"community"}, nil)
	editExport(t, src.dir, Excititor, newID, nil, []string{"community"}, nil)
	h := newHandler(t, src, Options{})
	p := "/concelier/exports/index.json"
	w := get(h, p)
	body := w.Body.Bytes()
	var got, want map[string]any
	if err := json.Unmarshal(body, &got); err != nil || w.Code != 200 {
		t.Fatalf("index: %d %s %v", w.Code, body, err)
	}
	json.Unmarshal(files["mirror/concelier/"+newID+"/mirror/index.json"], &want)
	var kept []any
	for _, d := range want["domains"].([]any) {
		if d.(map[string]any)["id"] == "primary" {
			kept = append(kept, d)
		}
	}
	want["domains"] = kept
	if !reflect.DeepEqual(got, want) {
		t.Errorf("index served:\n%s\nwant the exporter's with only primary: %v", body, want)
	}
	etag := `"sha256:` + sum(body) + `"`
	if w.Header().Get("ETag") != etag || w.Header().Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Errorf("index headers %v, want ETag %s and length %d", w.Header(), etag, len(body))
	}
	if w := do(h, req{path: p, hdr: map[string]string{"If-None-Match": etag}}); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d %q", w.Code, w.Body)
	}
	if w := do(h, req{path: p, hdr: map[string]string{"Range": "bytes=2-9"}}); w.Code != 206 || !bytes.Equal(w.Body.Bytes(), body[2:10]) {
		t.Errorf("Range: %d %q", w.Code, w.Body)
	}
	if w := do(h, req{method: http.MethodHead, path: p}); w.Code != 200 || w.Header().Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Errorf("HEAD: %d %v", w.Code, w.Header())
	}
	// What the index announces is served; nothing else is.
	for _, d := range []struct {
		id   string
		code int
	}{{"primary", 200}, {"community", 404}} {
		for _, f := range []string{"manifest.json", "bundle.json", "bundle.json.jws"} {
			if w := get(h, "/concelier/exports/mirror/"+d.id+"/"+f); w.Code != d.code {
				t.Errorf("%s/%s: %d, want %d", d.id, f, w.Code, d.code)
			}
		}
	}
	w = get(h, "/excititor/mirror/domains")
	var list struct{ Domains []DomainInfo }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 || len(list.Domains) != 0 {
		t.Errorf("excititor domains without files: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/excititor/mirror/domains/community", "/excititor/mirror/community/index"} {
		if w := get(h, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
}

// Hostile indexes: entries that are not objects and repeated ids are not
// announced; an index the site cannot filter (domains not an array, not a
// JSON object, over MaxIndexSize) is 503, never served unfiltered.
func TestHostileIndex(t *testing.T) {
	for _, tc := range []struct {
		name  string
		index []byte
		code  int
		want  string
	}{
		{"not objects, repeated ids", []byte(`{"schemaVersion":1,"domains":["community",1,{"id":"primary"},{"id":"primary"},{"id":"community"}]}`), 200,
			`{"schemaVersion":1,"domains":[{"id":"primary"}]}`},
		{"domains an object", []byte(`{"schemaVersion":1,"domains":{"id":"community"}}`), 503, ""},
		{"not an object", []byte(`[{"id":"community"}]`), 503, ""},
		{"not JSON", []byte(`{"domains":[{"id":"community"}`), 503, ""},
		{"over MaxIndexSize", append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), MaxIndexSize)...), `","domains":[{"id":"community"}]}`...), 503, ""},
	} {
		dir := t.TempDir()
		_, key, _ := ed25519.GenerateKey(nil)
		if _, err := kittest.MirrorGeneration(dir, key, kittest.MirrorExport{Kind: Concelier, ExportID: newID, Created: created,
			Domains: []string{"primary", "community"}}); err != nil {
			t.Fatal(err)
		}
		editExport(t, dir, Concelier, newID, []string{"primary"}, []string{"community"}, tc.index)
		h := newHandler(t, &dirGen{dir: dir, id: "g"}, Options{})
		w := get(h, "/concelier/exports/index.json")
		if w.Code != tc.code || tc.code == 200 && w.Body.String() != tc.want {
			t.Errorf("%s: %d %.200q, want %d %q", tc.name, w.Code, w.Body, tc.code, tc.want)
		}
		if w := get(h, "/concelier/exports/mirror/primary/bundle.json"); w.Code != 200 {
			t.Errorf("%s: the bundle beside the index: %d", tc.name, w.Code)
		}
	}
}
