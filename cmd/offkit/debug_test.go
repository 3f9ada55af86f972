package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/schemas"
)

// exampleELF is a crafted ELF file with a GNU and a Go build id note.
const (
	exampleELF  = "../../debugstore/testdata/example.elf"
	exampleID   = "3f1c9a0455e217b86d20418ec05b937a12f4680d"
	exampleGoID = "Kq3Nv0bJ/aZ1x/Hq9/mW2e"
	pciRescan   = "/sys/bus/pci/rescan" // write-only: EACCES even for root
)

// offkit debug buildid prints `<id> <file>` and the Go build id, one line
// per file; a file without a note gets the text-sha256 id and says so.
func TestDebugBuildID(t *testing.T) {
	r := newRunner(t)
	res := r.ok("debug", "buildid", exampleELF)
	if want := exampleID + " " + exampleELF + " go:" + exampleGoID + "\n"; res.stdout != want {
		t.Errorf("stdout %q, want %q", res.stdout, want)
	}

	// The same file without its build id note (the note's type patched).
	b, err := os.ReadFile(exampleELF)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "GNU\x00")
	b[i-4] = 1 // the note's type: NT_GNU_ABI_TAG, not NT_GNU_BUILD_ID
	noNote := writeFile(t, filepath.Join(t.TempDir(), "no note"), string(b))
	res = r.ok("debug", "buildid", noNote, exampleELF)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "text-sha256:") || !strings.HasSuffix(lines[0], noNote+" go:"+exampleGoID+" (no build id note)") ||
		!strings.HasPrefix(lines[1], exampleID+" ") {
		t.Errorf("stdout:\n%s", res.stdout)
	}

	// --json: a list, in the order named, valid against its schema.
	jres := r.ok("debug", "buildid", exampleELF, noNote, "--pid", strconv.Itoa(os.Getpid()), "--json")
	checkSchema(t, schemas.OutputDebugBuildID, jres.stdout)
	checkKeys(t, jres.stdout)
	var out []buildIDOutput
	if err := json.Unmarshal([]byte(jres.stdout), &out); err != nil || len(out) != 3 {
		t.Fatalf("%v: %s", err, jres.stdout)
	}
	if o := out[0]; o.ID != exampleID || o.BuildID != exampleID || !o.HasNote || o.GoBuildID != exampleGoID || o.FallbackID != "" ||
		o.Class != 64 || o.ByteOrder != "little" || o.Machine != "EM_X86_64" {
		t.Errorf("example: %+v", o)
	}
	if o := out[1]; o.HasNote || o.BuildID != "" || o.ID != o.FallbackID || !strings.HasPrefix(o.ID, debugstore.TextSHA256Prefix) {
		t.Errorf("no note: %+v", o)
	}
	// --pid reads the running test binary through /proc/PID/exe.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	st, _ := exe.Stat()
	self, err := debugstore.ReadBuildID(exe, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if o := out[2]; o.Pid != os.Getpid() || o.File != "/proc/"+strconv.Itoa(os.Getpid())+"/exe" || o.ID != self.String() || o.GoBuildID == "" {
		t.Errorf("--pid: %+v, want id %s", o, self)
	}
}

// Exit codes: 1 for a file or process not found, 11 for a file that is not
// ELF or is malformed, 12 for one that cannot be read; with several files
// the good ones are still printed.
func TestDebugBuildIDExitCodes(t *testing.T) {
	r := newRunner(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	r.fails(1, []string{"debug", "buildid", missing}, missing, "not found")
	r.fails(1, []string{"debug", "buildid", "--pid", "999999999"}, "process 999999999")
	script := writeFile(t, filepath.Join(dir, "script.sh"), "#!/bin/sh\necho hello\n")
	r.fails(11, []string{"debug", "buildid", script}, script, "not an ELF file")
	b, err := os.ReadFile(exampleELF)
	if err != nil {
		t.Fatal(err)
	}
	cut := writeFile(t, filepath.Join(dir, "cut.elf"), string(b[:100]))
	r.fails(11, []string{"debug", "buildid", cut}, cut, "past the end of the file")
	r.fails(11, []string{"debug", "buildid", dir}, dir, "not a regular file")
	r.fails(11, []string{"debug", "buildid"}, "name a FILE or --pid")
	if _, err := os.Stat(pciRescan); err == nil {
		r.fails(12, []string{"debug", "buildid", pciRescan}, pciRescan)
	}

	res := r.run("debug", "buildid", exampleELF, script, missing)
	if res.code != 11 || res.stdout != exampleID+" "+exampleELF+" go:"+exampleGoID+"\n" ||
		!strings.Contains(res.stderr, script) || !strings.Contains(res.stderr, missing) || !strings.Contains(res.stderr, "2 of 3 files failed") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

// A core file's notes carry no build id: exit 1, and the message says where
// the executable's build id is.
func TestDebugBuildIDCore(t *testing.T) {
	b, err := os.ReadFile(exampleELF)
	if err != nil {
		t.Fatal(err)
	}
	core := make([]byte, 64)
	copy(core, b[:64])
	core[16] = 4 // e_type ET_CORE, little-endian
	for i := 32; i < 64; i++ {
		core[i] = 0 // no program or section headers
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "core"), string(core))
	newRunner(t).fails(1, []string{"debug", "buildid", path}, path, "a core file", "eu-unstrip -n --core")
}

// offkit debug buildid --json over every ELF file of /usr/bin prints the
// build ids that `readelf -n` prints, and no id for the same files.
func TestDebugBuildIDMatchesReadelf(t *testing.T) {
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Skip("readelf not installed")
	}
	entries, err := os.ReadDir("/usr/bin")
	if err != nil {
		t.Skip(err)
	}
	var files []string
	for _, e := range entries {
		path := filepath.Join("/usr/bin", e.Name())
		if !e.Type().IsRegular() {
			continue
		}
		if f, err := os.Open(path); err == nil {
			var magic [4]byte
			if n, _ := f.Read(magic[:]); n == 4 && string(magic[:]) == "\x7fELF" {
				files = append(files, path)
			}
			f.Close()
		}
	}
	if len(files) == 0 {
		t.Skip("no ELF files in /usr/bin")
	}
	res := newRunner(t).ok(append([]string{"debug", "buildid", "--json"}, files...)...)
	var out []buildIDOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out) != len(files) {
		t.Fatalf("%v: %d objects for %d files", err, len(out), len(files))
	}
	text, _ := exec.Command(readelf, append([]string{"-n", "-W"}, files...)...).Output()
	want := map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(text), "\n") {
		if name, ok := strings.CutPrefix(line, "File: "); ok {
			cur = name
		} else if _, id, ok := strings.Cut(line, "Build ID: "); ok {
			want[cur] = strings.TrimSpace(id)
		}
	}
	for _, o := range out {
		if o.BuildID != want[o.File] || o.HasNote != (want[o.File] != "") {
			t.Errorf("%s: build id %q, readelf %q", o.File, o.BuildID, want[o.File])
		}
	}
	t.Logf("%d ELF files of /usr/bin, %d with a build id note", len(out), len(want))
}
