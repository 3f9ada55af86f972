package registry_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/registry"
)

// A registry serves what a Store (site.View on a real site) holds, under the
// names the mapping gives the kits' image references.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	s := &dirStore{dir: dir}
	cfg := s.putType([]byte(`{}`), ocispec.MediaTypeImageConfig)
	m, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{}})
	d := s.putType(m, ocispec.MediaTypeImageManifest)
	d.Annotations = map[string]string{ocispec.AnnotationRefName: "registry.stella-ops.org/stellaops/zastava-observer:1.4.2"}
	s.index, _ = json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{d}})

	reg := registry.New(s, registry.Options{Mapping: reponame.Mapping{StripPrefix: "stellaops/"}})
	for _, path := range []string{"/v2/_catalog", "/v2/zastava-observer/tags/list"} {
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		fmt.Println(rec.Code, string(b))
	}
	// Output:
	// 200 {"repositories":["zastava-observer"]}
	// 200 {"name":"zastava-observer","tags":["1.4.2"]}
}
