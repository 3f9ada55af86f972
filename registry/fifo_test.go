package registry_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/fifotest"
)

// A blob of the store swapped for a named pipe is answered at once as a
// store that cannot be read (500 UNKNOWN, logged), for GET and HEAD: the
// request does not wait for a writer.
func TestBlobReplacedByNamedPipe(t *testing.T) {
	f := newFixture(t)
	blob := "/v2/team/app/blobs/" + f.layer.String()
	if r := f.do(t, "GET", blob); r.code != 200 {
		t.Fatalf("GET blob: %d", r.code)
	}
	dir := filepath.Join(f.root, "store", "oci", "blobs", "sha256")
	must(t, os.Chmod(dir, 0o755))
	p := filepath.Join(dir, f.layer.Hex)
	fifotest.Replace(t, p)
	for _, method := range []string{"GET", "HEAD"} {
		done := fifotest.Guard(t, p)
		r := f.do(t, method, blob)
		done()
		if r.code != http.StatusInternalServerError || method == "GET" && errorCode(t, r) != "UNKNOWN" {
			t.Errorf("%s of a blob that is a named pipe: %d %s", method, r.code, r.body)
		}
	}
}
