package mirrorserve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// rewriteFile replaces the file p of the generation at dir with data and
// fixes its record in exports.json, as a kit signed by a trusted key but
// not made by offkit build could install it.
func rewriteFile(t *testing.T, dir, p string, data []byte) {
	t.Helper()
	fp := filepath.Join(dir, filepath.FromSlash(p))
	os.Chmod(fp, 0o644)
	if err := os.WriteFile(fp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ej := filepath.Join(dir, filepath.FromSlash(ExportsPath))
	b, err := os.ReadFile(ej)
	if err != nil {
		t.Fatal(err)
	}
	var se map[string]any
	if err := json.Unmarshal(b, &se); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range se["exports"].([]any) {
		for _, f := range x.(map[string]any)["files"].([]any) {
			if f := f.(map[string]any); f["path"] == p {
				f["size"], f["sha256"], found = len(data), sum(data), true
			}
		}
	}
	if !found {
		t.Fatalf("%s is not in %s", p, ExportsPath)
	}
	out, _ := json.Marshal(se)
	os.Chmod(ej, 0o644)
	if err := os.WriteFile(ej, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An Excititor domain index that names its own index.json or a signature
// file as an export's file does not make it a download: a download is an
// export file, served beside its signature (offkit build refuses such an
// index; a kit made otherwise is not trusted to have).
func TestExcititorDownloadsAreExportFiles(t *testing.T) {
	src, _ := fixture(t)
	x := "mirror/excititor/" + newID + "/mirror/community/"
	index := []byte(`{"schemaVersion":1,"exports":[` +
		`{"exportKey":"consensus","format":"json","file":"consensus.json"},` +
		`{"exportKey":"idx","format":"json","file":"index.json"},` +
		`{"exportKey":"sig","format":"json","file":"consensus.json.jws"}]}`)
	rewriteFile(t, src.dir, x+"index.json", index)
	h := newHandler(t, src, Options{})
	d := "/excititor/mirror/domains/community/exports/"
	for p, code := range map[string]int{
		d + "consensus/json":     200,
		d + "consensus/json.jws": 200,
		d + "idx/json":           404,
		d + "sig/json":           404,
	} {
		if w := get(h, p); w.Code != code {
			t.Errorf("%s: %d, want %d", p, w.Code, code)
		}
	}
}
