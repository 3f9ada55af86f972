package debugstore

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Programs linked by gcc with each kind of --build-id, 64-bit and (when
// gcc can, without a C library) 32-bit; their .debug files split by
// objcopy and the stripped binaries carry the same id.
func TestReadBuildIDGCC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "start.c")
	if err := os.WriteFile(src, []byte("void _start(void) { for (;;); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"-m64", "-m32"} {
		for _, kind := range []struct{ flag, want string }{
			{"sha1", ""}, {"md5", ""}, {"0x0102030405060708", "0102030405060708"}, {"none", ""},
		} {
			t.Run(m+"/"+kind.flag, func(t *testing.T) {
				bin := filepath.Join(dir, strings.TrimPrefix(m, "-")+"-"+kind.flag)
				out, err := exec.Command(gcc, m, "-g", "-nostdlib", "-static", "-Wl,--build-id="+kind.flag, "-o", bin, src).CombinedOutput()
				if err != nil {
					t.Skipf("gcc %s cannot link here: %v\n%s", m, err, out)
				}
				id, err := readFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				class := 64
				if m == "-m32" {
					class = 32
				}
				if id.Class != class || id.ByteOrder != "little" || id.Machine == elf.EM_NONE {
					t.Errorf("%+v, want ELF%d little-endian", id, class)
				}
				switch kind.flag {
				case "none":
					if id.GNU != "" || id.TextSHA256 != TextSHA256Prefix+textSHA256(t, bin) {
						t.Errorf("--build-id=none: %+v", id)
					}
					return
				case "sha1":
					if len(id.GNU) != 40 {
						t.Errorf("sha1: %q", id.GNU)
					}
				case "md5":
					if len(id.GNU) != 32 {
						t.Errorf("md5: %q", id.GNU)
					}
				default:
					if id.GNU != kind.want {
						t.Errorf("GNU %q, want %s", id.GNU, kind.want)
					}
				}
				if want := readelfID(t, bin); want != "" && id.GNU != want {
					t.Errorf("GNU %q, readelf %q", id.GNU, want)
				}
				objcopy, err := exec.LookPath("objcopy")
				if err != nil {
					return
				}
				debug, stripped := bin+".debug", bin+".stripped"
				for _, args := range [][]string{{"--only-keep-debug", bin, debug}, {"--strip-all", bin, stripped}} {
					if out, err := exec.Command(objcopy, args...).CombinedOutput(); err != nil {
						t.Fatalf("objcopy %v: %v\n%s", args, err, out)
					}
				}
				for _, f := range []string{debug, stripped} {
					got, err := readFile(f)
					if err != nil || got.GNU != id.GNU {
						t.Errorf("%s: %+v, %v; want %s", filepath.Base(f), got, err, id.GNU)
					}
				}
			})
		}
	}
}

// textSHA256 is the SHA-256 of the file's .text, read with debug/elf (a
// file the test made).
func textSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".text")
	if s == nil {
		t.Fatalf("%s: no .text", path)
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readelfID is the build id `readelf -n` prints, "" without readelf.
func readelfID(t *testing.T, path string) string {
	t.Helper()
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		return ""
	}
	out, err := exec.Command(readelf, "-n", "-W", path).Output()
	if err != nil {
		t.Fatalf("readelf -n %s: %v", path, err)
	}
	ids := map[string][]string{}
	parseReadelf(out, []string{path}, ids)
	if len(ids[path]) != 1 {
		t.Fatalf("readelf -n %s: build ids %v", path, ids[path])
	}
	return ids[path][0]
}
