package mirrorserve

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
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

// A file of the generation that is a named pipe, small (read when the
// generation is built) or large (opened per request), is 503 at once: its
// open does not wait for a writer, and the rest of the export is served.
func TestNamedPipeNotServed(t *testing.T) {
	src, _ := fixture(t)
	c := "mirror/concelier/" + newID + "/mirror/"
	fifo := func(p string) {
		fp := filepath.Join(src.dir, filepath.FromSlash(p))
		os.Remove(fp)
		if err := syscall.Mkfifo(fp, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fifo(c + "primary/manifest.json")
	// A bundle recorded over MaxMemoryFile is opened per request.
	rewriteFile(t, src.dir, c+"community/bundle.json", bytes.Repeat([]byte(" "), MaxMemoryFile+1))
	fifo(c + "community/bundle.json")
	h := newHandler(t, src, Options{})
	p := "/concelier/exports/mirror/"
	for path, code := range map[string]int{
		p + "primary/manifest.json":   503,
		p + "community/bundle.json":   503,
		p + "primary/bundle.json":     200,
		p + "community/manifest.json": 200,
	} {
		if w := get(h, path); w.Code != code {
			t.Errorf("%s: %d, want %d", path, w.Code, code)
		}
	}
	// exports.json itself: nothing of the generation is served.
	fifo(ExportsPath)
	h = newHandler(t, &dirGen{dir: src.dir, id: "gen-2"}, Options{})
	if w := get(h, p+"primary/bundle.json"); w.Code != 503 {
		t.Errorf("exports.json a named pipe: %d, want 503", w.Code)
	}
}
