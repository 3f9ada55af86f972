package kittest

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// SiteKit builds kit name at version, signed by key, holding files (path
// under files/ → content; "a/x.yaml" becomes files/a/x.yaml) and one random
// image per reference. A reference is a repository path and tag without a
// registry host ("stellaops/app:1"): each SiteKit call pushes its images to
// a registry of its own on loopback and pulls them from there, so two kits
// naming one reference carry different images that `offkit serve` would
// answer under the same repository:tag.
func SiteKit(t testing.TB, key *Key, name, version string, files map[string]string, refs ...string) *kit.BuildResult {
	t.Helper()
	dir := t.TempDir()
	spec := &manifest.Spec{Name: name, Version: version, CreatedAt: &Created}
	if len(files) > 0 {
		src := map[string]string{}
		for p, c := range files {
			src["files/"+p] = c
		}
		Files(t, dir, src)
		spec.Files = []manifest.FileSource{{Src: "files", Dest: "."}}
	}
	if len(refs) > 0 {
		s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer s.Close()
		host := strings.TrimPrefix(s.URL, "http://")
		for _, ref := range refs {
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			Push(t, host+"/"+ref, img)
			spec.Images = append(spec.Images, manifest.ImageSource{Ref: host + "/" + ref})
		}
	}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: filepath.Join(t.TempDir()), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// RoleOf is the role an entry path implies (rules/, dashboards/, ...), for
// crafted manifests that do not lie about roles.
func RoleOf(p string) manifest.Role {
	first, _, _ := strings.Cut(p, "/")
	switch first {
	case "images":
		if p == "images/index.json" || p == "images/oci-layout" {
			return manifest.RoleImageIndex
		}
		return manifest.RoleImageBlob
	case "rules":
		return manifest.RoleRules
	case "dashboards":
		return manifest.RoleDashboard
	case "mirror":
		return manifest.RoleMirror
	case "debug":
		return manifest.RoleDebug
	case "authority":
		return manifest.RoleAuthority
	}
	return manifest.RoleFile
}
