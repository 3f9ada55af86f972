package verify_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/verify"
)

// TestSHA256SUMSMustMatch: the third entry, compared with what the manifest
// implies a line at a time, must be exactly those bytes: a byte changed,
// lines swapped, a line missing or a line more is refused, the genuine
// one accepted.
func TestSHA256SUMSMustMatch(t *testing.T) {
	key := kittest.NewKey(t)
	content := []kittest.Entry{
		kittest.File("files/a", []byte("alpha")),
		kittest.File("files/b", []byte("bravo")),
		kittest.File("files/c", []byte("charlie")),
	}
	m := kittest.ManifestFor(content)
	m.Signer = &manifest.Signer{KeyID: key.Public.KeyID()}
	mb, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Private.SignBlob(mb)
	if err != nil {
		t.Fatal(err)
	}
	sums := m.SHA256SUMS()
	lines := bytes.SplitAfter(sums, []byte("\n"))[:3]
	changed := bytes.Clone(sums)
	changed[len(changed)-2] ^= 1
	for _, c := range []struct {
		name   string
		sums   []byte
		code   int
		substr string
	}{
		{"genuine", sums, 0, ""},
		{"a byte changed", changed, 2, "SHA256SUMS"},
		{"lines swapped", bytes.Join([][]byte{lines[1], lines[0], lines[2]}, nil), 2, "SHA256SUMS"},
		{"a line missing", bytes.Join(lines[:2], nil), 2, "SHA256SUMS"},
		{"empty", nil, 2, "SHA256SUMS"},
		{"a line more", append(bytes.Clone(sums), lines[0]...), 11, "over the limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			craft := kittest.Craft{Content: content, Head: []kittest.Entry{
				kittest.File(kitfile.ManifestPath, mb),
				kittest.File(kitfile.SignaturePath, sig),
				kittest.File(kitfile.SumsPath, c.sums),
			}}
			p := craft.Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
			_, err := verify.File(context.Background(), p, opts(key))
			if c.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, c.code, c.substr)
		})
	}
}
