package kitfile_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/kitfile"
)

// tarOf writes names as canonical kit entries of one byte each.
func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	created := time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		if err := tw.WriteHeader(kitfile.Header(n, 1, created)); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readAll reads every entry, returning the names read and the first error.
func readAll(r *kitfile.Reader) ([]string, error) {
	var names []string
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return names, err
		}
		names = append(names, hdr.Name)
	}
}

// The Reader refuses a name it has read before, also one equal under case
// folding or Unicode normalisation: the head readers and a fetch of one
// entry rely on it. After CheckedInOrder it leaves that to its caller
// (package verify checks every name against the manifest in order) and
// returns the repeated name.
func TestReaderRepeatedNames(t *testing.T) {
	cases := map[string]struct {
		names  []string
		substr string
	}{
		"duplicate":      {[]string{"files/a", "files/b", "files/a"}, "duplicate entry"},
		"case":           {[]string{"files/a", "files/A"}, `collides with "files/a"`},
		"nfd twin":       {[]string{"files/caf\u00e9", "files/cafe\u0301"}, "collides with"},
		"kelvin":         {[]string{"files/k", "files/\u212a"}, "collides with"},
		"head repeated":  {[]string{kitfile.ManifestPath, kitfile.ManifestPath}, "duplicate entry"},
		"folded in head": {[]string{kitfile.SumsPath, "sha256sums"}, "collides with"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tb := tarOf(t, c.names...)
			got, err := readAll(kitfile.NewDecodedReader(bytes.NewReader(tb), int64(len(tb))))
			if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.substr) {
				t.Fatalf("error %v, want one with %q and exit 11", err, c.substr)
			}
			if last := c.names[len(c.names)-1]; !strings.Contains(err.Error(), last) {
				t.Errorf("error %v does not name %q", err, last)
			}
			if len(got) != len(c.names)-1 {
				t.Errorf("read %q before refusing, want all but the last", got)
			}

			r := kitfile.NewDecodedReader(bytes.NewReader(tb), int64(len(tb)))
			r.CheckedInOrder()
			got, err = readAll(r)
			if err != nil || len(got) != len(c.names) {
				t.Errorf("after CheckedInOrder: read %q, %v; want every name, for the caller to check", got, err)
			}
		})
	}
}

// CheckedInOrder drops only the check of repeated names: an unsafe name is
// still refused.
func TestCheckedInOrderKeepsNameChecks(t *testing.T) {
	for _, n := range []string{"../x", "/etc/passwd", `files\a`, "files/./a"} {
		tb := tarOf(t, "files/a", n)
		r := kitfile.NewDecodedReader(bytes.NewReader(tb), int64(len(tb)))
		r.CheckedInOrder()
		if _, err := readAll(r); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%q: %v, want exit 11", n, err)
		}
	}
}
