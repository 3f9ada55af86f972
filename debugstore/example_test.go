package debugstore_test

import (
	"fmt"
	"log"
	"os"

	"github.com/offkit/offkit/debugstore"
)

func ExampleReadBuildID() {
	f, err := os.Open("testdata/example.elf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	id, err := debugstore.ReadBuildID(f, st.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("build id:", id.GNU)
	fmt.Println("go build id:", id.Go)
	fmt.Printf("ELF%d %s-endian %s\n", id.Class, id.ByteOrder, id.Machine)
	fmt.Printf("debug file: .build-id/%s/%s.debug\n", id.GNU[:2], id.GNU[2:])
	// Output:
	// build id: 3f1c9a0455e217b86d20418ec05b937a12f4680d
	// go build id: Kq3Nv0bJ/aZ1x/Hq9/mW2e
	// ELF64 little-endian EM_X86_64
	// debug file: .build-id/3f/1c9a0455e217b86d20418ec05b937a12f4680d.debug
}
