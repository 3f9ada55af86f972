package kit

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// A file that grew or shrank between listing and hashing is refused by
// name, as packing it content first refuses it: both ways of writing a
// kit fail on the same files.
func TestHashListedRefusesAFileChangedSinceListed(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(string) error
	}{
		{"grown", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("more"))
			return err
		}},
		{"shrunk", func(p string) error { return os.Truncate(p, 1) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			srcs := feedSources(t)
			for i := range srcs {
				srcs[i].entry.SHA256 = ""
			}
			s := srcs[6] // several of the hasher's reads
			if err := c.change(s.file); err != nil {
				t.Fatal(err)
			}
			err := hashListed(context.Background(), srcs)
			if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), s.file) {
				t.Fatalf("err = %v, want a refusal naming %s", err, s.file)
			}
		})
	}
}

// Hashing the listed files stops when the build is cancelled: no digest
// is taken, and the error is the context's.
func TestHashListedStopsWhenCancelled(t *testing.T) {
	srcs := feedSources(t)
	for i := range srcs {
		srcs[i].entry.SHA256 = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := hashListed(ctx, srcs); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	for _, s := range srcs {
		if s.entry.SHA256 != "" {
			t.Fatalf("%s: digest %s taken after the cancel", s.entry.Path, s.entry.SHA256)
		}
	}
}
