package debugstore_test

import (
	"bytes"
	"debug/elf"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/site"
)

// server serves the site as offkit serve does: serve.New with the
// debuginfod handler mounted and its metrics registered.
func (ds *debugSite) server(t *testing.T) (*httptest.Server, http.Handler) {
	t.Helper()
	srv := serve.New(serve.Config{}, nil)
	h := debugstore.NewHandler(site.NewView(ds.root))
	srv.Handle(debugstore.Prefix, "buildid", h)
	srv.Metrics().MustRegister(h)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, h
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// rawSection is the bytes the file holds for section name, read with
// debug/elf's section header (Offset, FileSize: raw, not inflated).
func rawSection(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[s.Offset : s.Offset+s.FileSize]
}

// offkit serve answers debuginfod clients from an installed kit's
// .build-id tree: the .debug file and the executable byte for byte, a
// section from the debug file or else the executable, with debuginfod's
// headers, Range, HEAD, MAXSIZE (406), 404 for what it does not carry, 405
// for other methods, and hits, misses and bytes on /metrics.
func TestDebuginfod(t *testing.T) {
	ds := newDebugSite(t)
	ts, _ := ds.server(t)
	id := ds.prog.ID
	base := ts.URL + "/buildid/" + id
	debug, _ := os.ReadFile(ds.prog.Debug)
	exe, _ := os.ReadFile(ds.prog.Stripped)

	for _, tc := range []struct {
		url, file string
		want      []byte
	}{
		{base + "/debuginfo", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", debug},
		{ts.URL + "/buildid/" + strings.ToUpper(id) + "/debuginfo", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", debug},
		{base + "/executable", "/debug/.build-id/" + id[:2] + "/" + id[2:], exe},
		// .debug_info is in the .debug file; .gnu_debuglink and .text only
		// in the executable (.text is NOBITS in the .debug file).
		{base + "/section/.debug_info", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", rawSection(t, ds.prog.Debug, ".debug_info")},
		{base + "/section/.gnu_debuglink", "/debug/.build-id/" + id[:2] + "/" + id[2:], rawSection(t, ds.prog.Stripped, ".gnu_debuglink")},
		{base + "/section/.text", "/debug/.build-id/" + id[:2] + "/" + id[2:], rawSection(t, ds.prog.Stripped, ".text")},
	} {
		if len(tc.want) == 0 {
			t.Fatalf("%s: nothing to compare with", tc.url)
		}
		r := do(t, "GET", tc.url)
		if r.code != 200 || !bytes.Equal(r.body, tc.want) {
			t.Errorf("GET %s: %d, %d bytes, want 200 and %d bytes", tc.url, r.code, len(r.body), len(tc.want))
		}
		n := strconv.Itoa(len(tc.want))
		if h := r.header; h.Get("Content-Length") != n || h.Get("X-DEBUGINFOD-SIZE") != n || h.Get("X-DEBUGINFOD-FILE") != tc.file ||
			h.Get("Last-Modified") == "" || h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET %s: headers %v", tc.url, h)
		}
		head := do(t, "HEAD", tc.url)
		if head.code != 200 || len(head.body) != 0 || head.header.Get("Content-Length") != n || head.header.Get("X-DEBUGINFOD-SIZE") != n {
			t.Errorf("HEAD %s: %d %v", tc.url, head.code, head.header)
		}
	}
	// .gnu_debuglink of the executable names the .debug file.
	if link := rawSection(t, ds.prog.Stripped, ".gnu_debuglink"); !bytes.HasPrefix(link, []byte("prog.debug\x00")) {
		t.Errorf(".gnu_debuglink %q", link)
	}

	// Range.
	r := do(t, "GET", base+"/debuginfo", "Range", "bytes=100-199")
	if r.code != http.StatusPartialContent || !bytes.Equal(r.body, debug[100:200]) || r.header.Get("X-DEBUGINFOD-SIZE") != strconv.Itoa(len(debug)) {
		t.Errorf("Range: %d, %d bytes, %v", r.code, len(r.body), r.header)
	}
	// X-DEBUGINFOD-MAXSIZE: a file over it is 406, at it is served.
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", strconv.Itoa(len(debug)-1)); r.code != http.StatusNotAcceptable {
		t.Errorf("MAXSIZE under the size: %d", r.code)
	}
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", strconv.Itoa(len(debug))); r.code != 200 || !bytes.Equal(r.body, debug) {
		t.Errorf("MAXSIZE at the size: %d", r.code)
	}
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", "lots"); r.code != http.StatusBadRequest {
		t.Errorf("MAXSIZE lots: %d", r.code)
	}
	// What is not carried.
	for _, u := range []string{
		"/buildid/" + strings.Repeat("0", 40) + "/debuginfo", "/buildid/" + strings.Repeat("0", 40) + "/section/.text",
		"/buildid/" + id + "/section/.bss", "/buildid/" + id + "/section/.nothing", "/buildid/" + id + "/section/",
		"/buildid/" + id + "/source/usr/src/prog.c", "/buildid/" + id + "/source/etc/passwd", "/buildid/" + id + "/other", "/buildid/" + id,
	} {
		if r := do(t, "GET", ts.URL+u); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, r.code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		if r := do(t, m, base+"/debuginfo"); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v", m, r.code, r.header)
		}
	}

	m := string(do(t, "GET", ts.URL+"/metrics").body)
	for _, want := range []string{
		`offkit_debuginfod_hits_total{kind="debuginfo"} 6`,
		`offkit_debuginfod_hits_total{kind="executable"} 2`,
		`offkit_debuginfod_hits_total{kind="section"} 6`,
		`offkit_debuginfod_misses_total{kind="debuginfo"} 1`,
		`offkit_debuginfod_misses_total{kind="section"} 4`,
		`offkit_debuginfod_misses_total{kind="source"} 2`,
		`offkit_debuginfod_bytes_total{kind="debuginfo"} ` + strconv.Itoa(3*len(debug)+100),
		`offkit_debuginfod_bytes_total{kind="executable"} ` + strconv.Itoa(len(exe)),
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Ids that are no build id are 400 from the handler and never reach the
// file system; through the server, paths with dot segments are redirected
// by its mux before any handler. Nothing of them is ever served.
func TestDebuginfodHostileIDs(t *testing.T) {
	ds := newDebugSite(t)
	ts, h := ds.server(t)
	id := ds.prog.ID
	for _, bad := range []string{
		"../../etc/passwd", "%2e%2e", id + "/source//etc", "/etc/passwd", "..%2f..%2fetc%2fpasswd", id[1:], id + "0", id[:14], strings.Repeat("a", 130),
		id[:38] + "zz", "-" + id[1:], id[:20] + "%00" + id[23:], strings.Repeat("0", 1<<20),
	} {
		path := "/buildid/" + bad + "/debuginfo"
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(path, "%2e", "."), "%2f", "/"), "%00", "\x00")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest && !(rec.Code == http.StatusNotFound && (strings.Contains(bad, "%2f") || strings.HasPrefix(bad, id+"/"))) {
			t.Errorf("handler %.60q: %d, want 400", req.URL.Path, rec.Code)
		}
		if len(bad) > 1000 {
			continue // past the server's header limit: 431
		}
		if r := do(t, "GET", ts.URL+path); r.code == 200 || bytes.Contains(r.body, []byte("root:")) {
			t.Errorf("GET %.60q: %d", path, r.code)
		}
	}
	if r := do(t, "GET", ts.URL+"/buildid/"+strings.Repeat("0", 1<<20)+"/debuginfo"); r.code != http.StatusRequestHeaderFieldsTooLarge && r.code != http.StatusBadRequest {
		t.Errorf("1 MB id: %d", r.code)
	}
}
