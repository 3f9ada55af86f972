package debugstore

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxReadelfFiles caps the ELF files compared with readelf, so that the
// test stays within about 30 s on a small machine: when /usr/bin and
// /usr/lib hold more, an evenly spread sample of this many (in path order)
// is compared, and the test logs how many it skipped.
const maxReadelfFiles = 3000

// Every ELF file in /usr/bin and /usr/lib: ReadBuildID finds the build ids
// that `readelf -n` prints, and the same files have none.
func TestReadBuildIDMatchesReadelf(t *testing.T) {
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Skip("readelf not installed")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	start := time.Now()
	var files []string
	for _, root := range []string{"/usr/bin", "/usr/lib"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if isELF(path) {
				files = append(files, path)
			}
			return nil
		})
	}
	total := len(files)
	if total == 0 {
		t.Skip("no ELF files in /usr/bin and /usr/lib")
	}
	if total > maxReadelfFiles {
		sample := make([]string, 0, maxReadelfFiles)
		for i := range maxReadelfFiles {
			sample = append(sample, files[i*total/maxReadelfFiles])
		}
		files = sample
	}
	want := map[string][]string{}
	for batch := range slices.Chunk(files, 200) {
		out, _ := exec.Command(readelf, append([]string{"-n", "-W"}, batch...)...).Output()
		parseReadelf(out, batch, want)
	}
	var noNote, mismatch int
	for _, path := range files {
		ids := want[path]
		slices.Sort(ids)
		ids = slices.Compact(ids)
		got, err := readFile(path)
		switch {
		case err != nil && len(ids) > 0:
			t.Errorf("%s: %v; readelf: %v", path, err, ids)
			mismatch++
		case err != nil:
			t.Errorf("%s: %v; readelf: no build id", path, err)
			mismatch++
		case len(ids) > 1:
			t.Errorf("%s: readelf prints several build ids %v; we read %q", path, ids, got.GNU)
			mismatch++
		case len(ids) == 0 && got.GNU != "":
			t.Errorf("%s: build id %s, readelf: none", path, got.GNU)
			mismatch++
		case len(ids) == 1 && got.GNU != ids[0]:
			t.Errorf("%s: build id %q, readelf: %s", path, got.GNU, ids[0])
			mismatch++
		case len(ids) == 0:
			noNote++
			if !strings.HasPrefix(got.TextSHA256, TextSHA256Prefix) && got.TextSHA256 != "" {
				t.Errorf("%s: fallback id %q", path, got.TextSHA256)
			}
		}
	}
	t.Logf("%d ELF files of %d compared with readelf in %v: %d without a build id note, %d mismatches",
		len(files), total, time.Since(start).Round(time.Millisecond), noNote, mismatch)
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	n, _ := f.Read(b[:])
	return n == 4 && string(b[:]) == "\x7fELF"
}

func readFile(path string) (BuildID, error) {
	f, err := os.Open(path)
	if err != nil {
		return BuildID{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return BuildID{}, err
	}
	return ReadBuildID(f, st.Size())
}

// parseReadelf adds the build ids in the output of `readelf -n FILES` to
// ids by file. With one file readelf prints no "File:" line.
func parseReadelf(out []byte, files []string, ids map[string][]string) {
	cur := ""
	if len(files) == 1 {
		cur = files[0]
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "File: "); ok {
			cur = name
			continue
		}
		// With -W the id ends the note's line.
		if _, id, ok := strings.Cut(line, "Build ID: "); ok && cur != "" {
			ids[cur] = append(ids[cur], strings.TrimSpace(id))
		}
	}
}
