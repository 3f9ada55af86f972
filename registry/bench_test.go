package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/registry"
)

// dirStore is a Store over a folder of blobs and one index, for
// benchmarks that need thousands of blobs without building kits.
type dirStore struct {
	dir   string
	index []byte
}

func (s *dirStore) Generation() (string, error)     { return "1", nil }
func (s *dirStore) Images() (string, []byte, error) { return "1", s.index, nil }
func (s *dirStore) Blob(d string) (*os.File, error) { return os.Open(filepath.Join(s.dir, d[7:])) }
func (s *dirStore) put(b []byte) ocispec.Descriptor { return s.putType(b, "") }
func (s *dirStore) putType(b []byte, mt string) ocispec.Descriptor {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	os.WriteFile(filepath.Join(s.dir, h), b, 0o444)
	return ocispec.Descriptor{MediaType: mt, Digest: digest.Digest("sha256:" + h), Size: int64(len(b))}
}

// BenchmarkStartup: a new registry over a site of 1,000 images and 5,000
// blobs answers its first request (which reads every manifest once).
func BenchmarkStartup(b *testing.B) {
	s := &dirStore{dir: b.TempDir()}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	for i := range 1000 {
		cfg := s.putType([]byte(fmt.Sprintf(`{"i":%d}`, i)), ocispec.MediaTypeImageConfig)
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
		m.SchemaVersion = 2
		for l := range 3 {
			m.Layers = append(m.Layers, s.putType([]byte(fmt.Sprintf("layer %d of %d", l, i)), ocispec.MediaTypeImageLayerGzip))
		}
		mb, _ := json.Marshal(m)
		d := s.putType(mb, ocispec.MediaTypeImageManifest)
		d.Annotations = map[string]string{ocispec.AnnotationRefName: fmt.Sprintf("registry.example/team/app%d:1.0", i)}
		idx.Manifests = append(idx.Manifests, d)
	}
	s.index, _ = json.Marshal(idx)
	b.ResetTimer()
	for range b.N {
		srv := httptest.NewServer(registry.New(s, registry.Options{}))
		res, err := http.Get(srv.URL + "/v2/team/app999/manifests/1.0")
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("first request: %v %v", res, err)
		}
		res.Body.Close()
		srv.Close()
	}
}
