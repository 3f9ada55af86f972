package site_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// Install a kit into a site, read what it serves through a View, and see
// the same kit refused when it is installed again as something new.
func ExampleSite_Install() {
	dir, _ := os.MkdirTemp("", "offkit-example-")
	defer os.RemoveAll(dir)
	kitPath, pub, err := kittest.ExampleKit(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	root := filepath.Join(dir, "site")

	s, err := site.Open(root, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	opts := site.InstallOptions{Keys: []*sign.PublicKey{pub}, Now: kittest.Created}
	res, err := s.Install(context.Background(), kitPath, opts)
	if err != nil {
		fmt.Println(err) // wraps the errdef sentinel that gives the exit code
		return
	}
	fmt.Println(res.Name, res.Version, "generation", res.Generation, res.Entries, "entries")

	// Readers (serve, push) see the generation `current` points to.
	files, err := site.NewView(root).Tree("files")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(filepath.Join(files, "demo", "values.yaml"))
	fmt.Printf("%s", b)

	// The very kit again: already active, nothing changes.
	again, err := s.Install(context.Background(), kitPath, opts)
	fmt.Println(again.AlreadyActive, again.Generation, err)

	// A kit no trusted key signed is refused (and quarantined).
	_, stranger, _ := kittest.ExampleKit(filepath.Join(dir, "other"))
	_, err = s.Install(context.Background(), kitPath, site.InstallOptions{Keys: []*sign.PublicKey{stranger}, Now: kittest.Created})
	fmt.Println(errors.Is(err, errdef.ErrSignature))
	// Output:
	// demo 1.0.0 generation 1 1 entries
	// replicas: 3
	// true 1 <nil>
	// true
}
