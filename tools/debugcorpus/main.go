// Command debugcorpus writes the source of the debug bench's kit
// (scripts/bench-debug.sh): -n debug files of -size bytes each, small ELF
// files (internal/elfgen) with distinct GNU build ids and incompressible
// filler, into -o, and prints the build id of the file in the middle of
// the kit (by build id, the kit's order), the one the bench rehydrates.
//
//	go run ./tools/debugcorpus -o DIR -n 200 -size 10485760
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/offkit/offkit/internal/elfgen"
)

func main() {
	out := flag.String("o", "", "folder to write the files into")
	n := flag.Int("n", 200, "number of files")
	size := flag.Int64("size", 10<<20, "size of each file, about")
	flag.Parse()
	if *out == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: debugcorpus -o DIR [-n N] [-size BYTES]")
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	var ids []string
	for i := 0; i < *n; i++ {
		sum := sha1.Sum([]byte(fmt.Sprintf("debugcorpus %d", i)))
		ids = append(ids, hex.EncodeToString(sum[:]))
		o := elfgen.Options{BuildID: sum[:], Filler: *size - 512, Seed: uint64(i)}
		p := filepath.Join(*out, fmt.Sprintf("f%05d.debug", i))
		if st, err := os.Stat(p); err == nil && st.Size() == elfgen.Size(o) {
			continue // kept from an earlier run: same bytes
		}
		f, err := os.Create(p)
		if err != nil {
			fail(err)
		}
		if err := elfgen.Write(f, o); err != nil {
			fail(err)
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
	sort.Strings(ids)
	fmt.Println(ids[len(ids)/2])
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "debugcorpus:", err)
	os.Exit(1)
}
