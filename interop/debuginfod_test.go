//go:build interop

package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debugProgram compiles a small C program with gcc -g -Wl,--build-id,
// splits it with objcopy --only-keep-debug and strips it; it returns the
// build id (offkit debug buildid) and the files.
func debugProgram(t *testing.T, dir string) (id, debug, stripped string) {
	t.Helper()
	src := filepath.Join(dir, "prog.c")
	os.WriteFile(src, []byte("#include <stdio.h>\nstatic int answer(int x) { return x * 6; }\nint main(void) { printf(\"%d\\n\", answer(7)); return 0; }\n"), 0o644)
	full, debug, stripped := filepath.Join(dir, "prog"), filepath.Join(dir, "prog.debug"), filepath.Join(dir, "prog.stripped")
	run(t, dir, nil, "gcc", "-g", "-O0", "-Wl,--build-id", "-o", full, src)
	run(t, dir, nil, "objcopy", "--only-keep-debug", full, debug)
	run(t, dir, nil, "strip", "--strip-debug", "--strip-unneeded", "-o", stripped, full)
	run(t, dir, nil, "objcopy", "--add-gnu-debuglink="+debug, stripped)
	id, _, _ = strings.Cut(run(t, dir, nil, "offkit", "debug", "buildid", stripped), " ")
	if len(id) != 40 {
		t.Fatalf("build id %q", id)
	}
	return id, debug, stripped
}

// TestDebuginfodFind: a gcc program's .debug file and stripped executable,
// carried in a kit's .build-id tree, installed and served by offkit serve,
// are fetched byte for byte by elfutils' debuginfod-find (debuginfo,
// executable, section), and gdb, given only the stripped program and
// DEBUGINFOD_URLS, resolves a function's source line.
func TestDebuginfodFind(t *testing.T) {
	dir := t.TempDir()
	id, debug, stripped := debugProgram(t, dir)
	tree := filepath.Join(dir, "symbols", ".build-id", id[:2])
	os.MkdirAll(tree, 0o755)
	for src, dst := range map[string]string{debug: id[2:] + ".debug", stripped: id[2:]} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(tree, dst), b, 0o755)
	}
	os.WriteFile(filepath.Join(dir, "kit.yaml"), []byte("name: symbols\nversion: 1.0.0\ncreatedAt: 2025-10-20T00:00:00Z\ndebug:\n  - src: symbols\n    kind: build-id-tree\n"), 0o644)
	keyEnv := cosignEnv(t, dir)
	run(t, dir, keyEnv, "offkit", "key", "generate", "--output-key-prefix", "kit")
	run(t, dir, keyEnv, "offkit", "build", "-f", "kit.yaml", "-o", dir, "--key", "kit.key")
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", filepath.Join(dir, "symbols-1.0.0.kit.tar.zst"), "--root", root, "--key", "kit.pub")
	if out := run(t, dir, nil, "offkit", "debug", "find", strings.ToUpper(id), "--root", root); !strings.Contains(out, id[2:]+".debug\n") {
		t.Errorf("offkit debug find: %s", out)
	}
	addr := startServe(t, root)
	// Each query with a cache of its own, so that each asks the server
	// (with debuginfo cached, debuginfod-find 0.188 looks for a section in
	// the cached files and does not ask the server when they lack it).
	find := func(args ...string) string {
		t.Helper()
		env := []string{"DEBUGINFOD_URLS=http://" + addr, "DEBUGINFOD_CACHE_PATH=" + t.TempDir(), "DEBUGINFOD_TIMEOUT=10"}
		cmd := exec.Command(tool(t, "debuginfod-find"), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("debuginfod-find %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	env := []string{"DEBUGINFOD_URLS=http://" + addr, "DEBUGINFOD_CACHE_PATH=" + t.TempDir()}

	same := func(what, got, want string) {
		t.Helper()
		g, err := os.ReadFile(got)
		w, _ := os.ReadFile(want)
		if err != nil || !bytes.Equal(g, w) {
			t.Errorf("debuginfod-find %s: %s (%v) is not %s", what, got, err, want)
		}
	}
	same("debuginfo", find("debuginfo", id), debug)
	same("executable", find("executable", id), stripped)
	for _, sec := range []string{".debug_info", ".gnu_debuglink"} {
		p := find("section", id, sec)
		want := filepath.Join(dir, "want"+sec)
		from := debug
		if sec == ".gnu_debuglink" {
			from = stripped
		}
		run(t, dir, nil, "objcopy", "--dump-section", sec+"="+want, from, filepath.Join(dir, "scratch"))
		same("section "+sec, p, want)
	}
	// An unknown id is not found (exit non-zero).
	fails(t, dir, env, "debuginfod-find", "debuginfo", strings.Repeat("0", 40))

	// gdb with the stripped program alone and the server.
	// Under `make interop` a missing gdb fails the test (the install
	// script installs it); elsewhere it skips what is left.
	gdb := optionalTool(t, "gdb")
	lone := filepath.Join(t.TempDir(), "prog")
	b, _ := os.ReadFile(stripped)
	os.WriteFile(lone, b, 0o755)
	cmd := exec.Command(gdb, "-nx", "-batch", "-iex", "set debuginfod enabled on", "-ex", "info line answer", lone)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), `prog.c" starts at address`) {
		t.Errorf("gdb with DEBUGINFOD_URLS: no source line for answer:\n%s", out)
	}
}
