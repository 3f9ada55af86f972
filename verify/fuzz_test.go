package verify_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// FuzzStream: any byte stream read as a kit ends in a documented exit code
// (2, 5 or 11), never a panic, and never a success unless it is the very
// kit the trusted key signed.
func FuzzStream(f *testing.F) {
	key := kittest.NewKey(f)
	res := kittest.Build(f, key, "fz", "1.0.0", 64<<10, f.TempDir())
	orig, err := os.ReadFile(res.Path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add(orig[:len(orig)/2])
	f.Add(append(append([]byte(nil), orig...), 0))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	opts := verify.Options{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := verify.Stream(context.Background(), bytes.NewReader(in), opts)
		if err == nil {
			if !bytes.HasPrefix(in, orig[:len(orig)-64]) {
				t.Fatalf("a stream that is not the signed kit verified")
			}
			return
		}
		if code := errdef.ExitCode(err); code != 2 && code != 5 && code != 11 {
			t.Fatalf("exit %d: %v", code, err)
		}
	})
}
