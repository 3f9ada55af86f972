// Command benchcorpus builds the corpus that `make bench` measures offkit
// against (the one the competing tools were measured on): two images made
// from tarballs of /usr/lib folders, sharing a base layer, served by a
// registry on loopback and written as an OCI layout for the tar|zstd
// baseline.
//
//	benchcorpus -cache DIR -addr 127.0.0.1:5999 -layout DIR
//
// It prints "ready" once the images are pushed, then serves until killed.
//
//	benchcorpus -empty -addr 127.0.0.1:5998
//
// serves an empty registry instead: the target of a timed push.
//
//	benchcorpus -push DIR -to HOST/NAMESPACE
//
// pushes every image of the OCI layout DIR (by its ref.name annotation,
// under NAMESPACE) with go-containerregistry's remote.Write, as Zarf's
// `package mirror-resources` does once it has extracted a package: the
// baseline of a timed `offkit push KIT`.
package main

import (
	"archive/tar"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
)

// The layers: a shared base and one layer of each image.
var layers = map[string][]string{
	"base": {"/usr/lib/x86_64-linux-gnu"},
	"app1": {"/usr/lib/llvm-14", "/usr/lib/gcc"},
	"app2": {"/usr/lib/python3.11", "/usr/lib/postgresql", "/usr/lib/git-core", "/usr/lib/node_modules"},
}

func main() {
	cache := flag.String("cache", "_bench/cache", "folder for the layer tarballs")
	addr := flag.String("addr", "127.0.0.1:5999", "loopback address to serve the registry on")
	out := flag.String("layout", "", "also write the images as an OCI layout here")
	emptyOnly := flag.Bool("empty", false, "serve an empty registry, a push target")
	pushDir := flag.String("push", "", "push the images of this OCI layout to -to")
	to := flag.String("to", "", "HOST/NAMESPACE to push to")
	flag.Parse()
	if *pushDir != "" {
		if err := pushLayout(*pushDir, *to); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *emptyOnly {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("ready")
		log.Fatal(http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	}
	if err := os.MkdirAll(*cache, 0o755); err != nil {
		log.Fatal(err)
	}
	ls := map[string]v1.Layer{}
	for n, dirs := range layers {
		p := filepath.Join(*cache, n+".tar.gz")
		if _, err := os.Stat(p); err != nil {
			if err := writeLayer(p, dirs); err != nil {
				log.Fatal(err)
			}
		}
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			log.Fatal(err)
		}
		ls[n] = l
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	var lp layout.Path
	if *out != "" {
		os.RemoveAll(*out)
		if lp, err = layout.Write(*out, empty.Index); err != nil {
			log.Fatal(err)
		}
	}
	for _, app := range []string{"app1", "app2"} {
		img, err := mutate.AppendLayers(empty.Image, ls["base"], ls[app])
		if err != nil {
			log.Fatal(err)
		}
		ref, err := name.ParseReference(fmt.Sprintf("%s/bench/%s:1.0", *addr, app), name.Insecure)
		if err != nil {
			log.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			log.Fatal(err)
		}
		if *out != "" {
			if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref.String()})); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Println("ready")
	select {}
}

func writeLayer(path string, dirs []string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	tw := tar.NewWriter(gz)
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return nil
			}
			src, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer src.Close()
			hdr := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// pushLayout pushes each image or index of the layout at dir to
// to/<repository>:<tag>.
func pushLayout(dir, to string) error {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		src, err := name.ParseReference(d.Annotations["org.opencontainers.image.ref.name"], name.Insecure)
		if err != nil {
			return err
		}
		dst, err := name.ParseReference(to+"/"+src.Context().RepositoryStr()+":"+src.Identifier(), name.Insecure)
		if err != nil {
			return err
		}
		if d.MediaType.IsIndex() {
			ii, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := remote.WriteIndex(dst, ii); err != nil {
				return err
			}
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := remote.Write(dst, img); err != nil {
			return err
		}
	}
	return nil
}
