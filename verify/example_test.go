package verify_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// Verify a kit with the key it must be signed by: the result is the
// manifest, trusted, and every entry was checked against it.
func ExampleFile() {
	dir, _ := os.MkdirTemp("", "offkit-example-")
	defer os.RemoveAll(dir)
	kitPath, pub, err := kittest.ExampleKit(dir)
	if err != nil {
		fmt.Println(err)
		return
	}

	res, err := verify.File(context.Background(), kitPath, verify.Options{
		Keys: []*sign.PublicKey{pub},
		Now:  kittest.Created, // expiry is judged at this time
	})
	if err != nil {
		fmt.Println(err) // wraps the errdef sentinel that gives the exit code
		return
	}
	fmt.Println(res.Manifest.Name, res.Manifest.Version)
	for _, e := range res.Manifest.Entries {
		fmt.Println(e.Path, e.Size, e.Role)
	}
	fmt.Println(res.Entries, "entries,", res.Bytes, "bytes checked")

	// Another key: refused after reading the head, nothing else.
	_, stranger, _ := kittest.ExampleKit(dir + "/other")
	_, err = verify.File(context.Background(), kitPath, verify.Options{Keys: []*sign.PublicKey{stranger}, Now: kittest.Created})
	fmt.Println(errors.Is(err, errdef.ErrSignature))
	// Output:
	// demo 1.0.0
	// files/demo/values.yaml 12 file
	// 1 entries, 12 bytes checked
	// true
}
