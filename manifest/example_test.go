package manifest_test

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// Encode writes a manifest in its one canonical form; Parse takes only
// that form, valid against the schema and the rules of package manifest,
// before anything trusts it.
func ExampleParse() {
	m := &manifest.Manifest{
		SchemaVersion: manifest.SchemaVersion,
		Name:          "demo",
		Version:       "1.0.0",
		CreatedAt:     time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC),
		Builder:       manifest.Builder{Name: "offkit", Version: "example"},
		Compression:   manifest.Compression{Algorithm: "zstd", Level: 3, FrameSize: 4 << 20},
		Entries: []manifest.Entry{{
			Path: "files/demo/values.yaml", Size: 12, Role: manifest.RoleFile,
			SHA256: "5bc6ea2fd5d2e8d0c8b7fba1cba26e6fd2b1c4bd3cf1e4eda4a0bdf6f4d0ebb4",
		}},
	}
	b, err := m.Encode()
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := manifest.Parse(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.FileName(), got.TotalSize(), "bytes")
	fmt.Printf("%s", got.SHA256SUMS())

	// An entry that climbs out of the kit is refused, naming the field.
	evil := bytes.Replace(b, []byte("files/demo/values.yaml"), []byte("files/../../etc/passwd"), 1)
	_, err = manifest.Parse(evil)
	fmt.Println(errors.Is(err, errdef.ErrInvalid))
	fmt.Println(err)
	// Output:
	// demo-1.0.0.kit.tar.zst 12 bytes
	// 5bc6ea2fd5d2e8d0c8b7fba1cba26e6fd2b1c4bd3cf1e4eda4a0bdf6f4d0ebb4  files/demo/values.yaml
	// true
	// entries[0] "files/../../etc/passwd": path has a ".." element: invalid input
}
