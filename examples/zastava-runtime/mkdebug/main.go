// Command mkdebug writes the example kit's debug file,
// examples/zastava-runtime/debug/zastava-observer.debug: a small ELF file
// (internal/elfgen) whose GNU build id is BuildID, standing for the
// `objcopy --only-keep-debug` output of the observer's binary (the example
// ships no binaries), so that `make demo` carries a .build-id store and
// serves it to debuginfod clients without a compiler:
//
//	go run ./examples/zastava-runtime/mkdebug -o examples/zastava-runtime/debug/zastava-observer.debug
//
// The bytes are fixed: the committed file is what it writes (its test
// checks).
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"

	"github.com/offkit/offkit/internal/elfgen"
)

// BuildID is the debug file's GNU build id.
const BuildID = "5e0bb3a1c0a4e34fa1b35de9a62e2a0b1c6f8d17"

// Bytes returns the debug file.
func Bytes() []byte {
	id, err := hex.DecodeString(BuildID)
	if err != nil {
		panic(err)
	}
	return elfgen.Bytes(elfgen.Options{BuildID: id, Filler: 4096, Seed: 142})
}

func main() {
	out := flag.String("o", "examples/zastava-runtime/debug/zastava-observer.debug", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mkdebug:", err)
		os.Exit(1)
	}
}
