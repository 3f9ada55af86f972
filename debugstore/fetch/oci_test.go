package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/debugstore/fetch"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// hostileRegistry serves one repository "store": the manifest at tag
// "t" and by digest, and the blobs, with the Content-Length each declares
// (manifestLen, blobLen when set: a lie) or none (chunked).
type hostileRegistry struct {
	manifest    []byte
	manifestLen string // Content-Length of the manifest's GET; "" the true one, "chunked" none
	headLen     string // Content-Length of the manifest's HEAD; "" the true one
	blobs       map[string][]byte
	blobLen     string
	requests    []string
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests = append(h.requests, r.Method+" "+r.URL.Path)
	md := digestOf(h.manifest)
	switch {
	case r.URL.Path == "/v2/store/manifests/t" || r.URL.Path == "/v2/store/manifests/"+md:
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Header().Set("Docker-Content-Digest", md)
		if r.Method == http.MethodHead {
			l := h.headLen
			if l == "" {
				l = strconv.Itoa(len(h.manifest))
			}
			w.Header().Set("Content-Length", l)
			return
		}
		switch h.manifestLen {
		case "":
			w.Header().Set("Content-Length", strconv.Itoa(len(h.manifest)))
		case "chunked":
		default:
			w.Header().Set("Content-Length", h.manifestLen)
		}
		w.WriteHeader(http.StatusOK)
		if h.manifestLen == "chunked" {
			w.(http.Flusher).Flush()
		}
		w.Write(h.manifest)
	case strings.HasPrefix(r.URL.Path, "/v2/store/blobs/"):
		b, ok := h.blobs[strings.TrimPrefix(r.URL.Path, "/v2/store/blobs/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if h.blobLen != "" {
			w.Header().Set("Content-Length", h.blobLen)
		}
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// artifact is a debug store manifest with one layer for id, declaring
// size (the file's own when negative) and the file's digest.
func artifact(t *testing.T, id string, file []byte, size int64) []byte {
	t.Helper()
	if size < 0 {
		size = int64(len(file))
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "artifactType": debugstore.ArtifactType,
		"config": map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digestOf([]byte("{}")), "size": 2},
		"layers": []any{map[string]any{"mediaType": debugstore.LayerMediaType, "digest": digestOf(file), "size": size,
			"annotations": map[string]string{debugstore.AnnotationTitle: debugstore.Title(id), debugstore.AnnotationBuildID: id}}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FromOCI bounds what a registry declares: a manifest over
// MaxArtifactManifest, declared or streamed, and a layer declaring more
// than MaxDebugFile (or a terabyte) are refused with exit 11 naming the
// registry and digest, before the bytes are read (nothing is allocated from
// a declared size); a body longer than its declaration is exit 2; the
// honest registry gets the file.
func TestFromOCIHostileRegistry(t *testing.T) {
	id := kittest.IDOf(7)
	file := kittest.DebugELF(t, id, 3000)
	honest := artifact(t, id, file, -1)
	big := bytes.Repeat([]byte(" "), debugstore.MaxArtifactManifest+1)
	copy(big, honest) // valid JSON, then spaces: one byte over the limit
	for name, c := range map[string]struct {
		reg       hostileRegistry
		code      int
		want      string
		noBlobGet bool
	}{
		"honest":                          {reg: hostileRegistry{manifest: honest}},
		"manifest declares a terabyte":    {reg: hostileRegistry{manifest: honest, manifestLen: strconv.Itoa(1 << 40)}, code: errdef.ExitInvalid, want: "declares 1099511627776 bytes, over the limit"},
		"manifest one byte over":          {reg: hostileRegistry{manifest: big}, code: errdef.ExitInvalid, want: "over the limit of 16777216"},
		"manifest streamed past its HEAD": {reg: hostileRegistry{manifest: big, manifestLen: "chunked", headLen: "100"}, code: errdef.ExitMismatch, want: "more than the 100 bytes declared"},
		"layer declares a terabyte":       {reg: hostileRegistry{manifest: artifact(t, id, file, 1<<40)}, code: errdef.ExitInvalid, want: "declares 1099511627776 bytes, over the limit of 4294967296 for a debug file"},
		"layer one byte over 4 GiB":       {reg: hostileRegistry{manifest: artifact(t, id, file, debugstore.MaxDebugFile+1)}, code: errdef.ExitInvalid, want: "declares 4294967297 bytes"},
		"layer longer than declared":      {reg: hostileRegistry{manifest: artifact(t, id, file, int64(len(file)-10)), blobLen: ""}, code: errdef.ExitMismatch},
		"layer shorter than declared":     {reg: hostileRegistry{manifest: artifact(t, id, file, int64(len(file)+10)), blobLen: strconv.Itoa(len(file) + 10)}, code: errdef.ExitMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			reg := c.reg
			reg.blobs = map[string][]byte{digestOf(file): file}
			srv := httptest.NewServer(&reg)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			var out bytes.Buffer
			res, err := fetch.FromOCI(context.Background(), host+"/store:t", id, fetch.Options{}, fetch.OCIOptions{HTTPClient: srv.Client()}, &out)
			if c.code == 0 {
				if err != nil || !bytes.Equal(out.Bytes(), file) || res.Digest != digestOf(file) {
					t.Fatalf("honest registry: %v, %d bytes", err, out.Len())
				}
				return
			}
			if errdef.ExitCode(err) != c.code || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), host+"/store:t") {
				t.Fatalf("got %v (exit %d), want exit %d with %q and the registry", err, errdef.ExitCode(err), c.code, c.want)
			}
			if c.code == errdef.ExitInvalid && strings.Contains(c.want, "debug file") {
				for _, r := range reg.requests {
					if strings.Contains(r, "/blobs/") {
						t.Errorf("the layer was fetched: %v", reg.requests)
					}
				}
				if !strings.Contains(err.Error(), digestOf(file)) {
					t.Errorf("the error names no layer digest: %v", err)
				}
			}
		})
	}
}
