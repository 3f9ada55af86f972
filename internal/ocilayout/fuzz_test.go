package ocilayout_test

import (
	"errors"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/manifest"
)

// FuzzCheck feeds Check any index.json and any bytes for an image's
// manifest: it never panics, and refuses only with errdef.ErrInvalid.
func FuzzCheck(f *testing.F) {
	o := &kittest.OCI{}
	d := newImage(f, o)
	o.Tag(repo+":1", d)
	files := o.Files(f)
	m := o.Manifest(files)
	m.Images = []manifest.Image{image(repo+":1", d)}
	manifestPath := ocilayout.BlobDir + d.Digest.Encoded()
	data := map[string][]byte{}
	for _, e := range files {
		data[e.Header.Name] = e.Data
	}
	f.Add(data[ocilayout.IndexPath], data[manifestPath])
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"`+string(d.Digest)+`","size":1}]}`), []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Fuzz(func(t *testing.T, index, man []byte) {
		l, err := ocilayout.New(m)
		if err != nil {
			t.Fatal(err)
		}
		for p, b := range data {
			switch p {
			case ocilayout.IndexPath:
				b = index
			case manifestPath:
				b = man
			}
			if b == nil {
				b = []byte{}
			}
			l.Add(p, b)
		}
		if _, err := l.Check(); err != nil && !errors.Is(err, errdef.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
