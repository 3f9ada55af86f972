// Command mirrorfixture makes a site that `offkit serve` serves feed-mirror
// exports from without a kit (for the mirror's bench and smoke scripts): a
// Concelier export with the domains primary and community, bundles of at
// least -bundle-size bytes signed with a cosign blob signature by a new
// ECDSA P-256 key, and an Excititor export with the domain community.
//
//	mirrorfixture -root DIR -key mirror-key.pub [-bundle-size 10485760]
//
// It writes the public key to -key (PEM) and prints the path of the
// Concelier export's primary domain folder in the generation.
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/offkit/offkit/internal/kittest"
)

const exportID = "20251123T000000Z"

func main() {
	root := flag.String("root", "", "site root to create (must not exist)")
	keyOut := flag.String("key", "", "where to write the bundles' public key (PEM)")
	size := flag.Int("bundle-size", 0, "pad each Concelier bundle to this many bytes")
	flag.Parse()
	if *root == "" || *keyOut == "" {
		log.Fatal("usage: mirrorfixture -root DIR -key FILE [-bundle-size N]")
	}
	ck, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := kittest.MirrorSite(*root, ek,
		kittest.MirrorExport{Kind: "concelier", ExportID: exportID, Created: "2025-11-23T00:00:00Z", Domains: []string{"primary", "community"}, BundleSize: *size, Cosign: ck},
		kittest.MirrorExport{Kind: "excititor", ExportID: exportID, Created: "2025-11-23T00:00:00Z", Domains: []string{"community"}},
	); err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ck.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*keyOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Join(*root, "generations", "1", "mirror", "concelier", exportID, "mirror"))
}
