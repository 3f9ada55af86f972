package kitfile_test

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/offkit/offkit/kitfile"
)

// Write a kit and read it back. The bytes depend only on what is written
// and the options (never on Concurrency); the reader refuses anything but
// the canonical headers the writer produces.
func Example() {
	created := time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC)
	var kit bytes.Buffer
	w, err := kitfile.NewWriter(&kit, created, kitfile.WriterOptions{Level: 3, FrameSize: 1 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The head: manifest, its signature (nil: unsigned), SHA256SUMS. This
	// example does not care what they say; package verify does.
	w.WriteHead([]byte(`{"name":"demo"}`), nil, bytes.NewReader([]byte("sums\n")))
	content := []byte("replicas: 3\n")
	w.WriteHeader("files/demo/values.yaml", int64(len(content)))
	w.Write(content)
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	head, err := kitfile.ReadHeadFrom(bytes.NewReader(kit.Bytes()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("head: %s, signed: %t\n", head.ManifestBytes, head.Signature != nil)

	r, err := kitfile.NewReader(bytes.NewReader(kit.Bytes()), nil, 1, 1<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err) // a *kitfile.EntryError names the entry
			return
		}
		b, _ := io.ReadAll(r)
		fmt.Printf("%s %d %q\n", hdr.Name, hdr.Size, b)
	}
	fmt.Println(r.Finish(), r.ModTime().Equal(created))
	// Output:
	// head: {"name":"demo"}, signed: false
	// offkit/manifest.json 15 "{\"name\":\"demo\"}"
	// SHA256SUMS 5 "sums\n"
	// files/demo/values.yaml 12 "replicas: 3\n"
	// <nil> true
}
