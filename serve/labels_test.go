package serve

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/httpstat"
)

// TestMetricLabelsBounded: requests with made-up methods and paths do not
// mint metrics label values; /metrics stays small.
func TestMetricLabelsBounded(t *testing.T) {
	s := New(Config{}, nil)
	// A part that takes every method (as the registry does) and answers
	// 405 to all but GET.
	s.Handle("/work", "work", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	s.Handle("GET /get", "get", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 5000 {
		method := fmt.Sprintf("X%dY", i)
		if i%5 == 0 {
			method = "GET"
		}
		target := "/work"
		switch i % 3 {
		case 0:
			target = fmt.Sprintf("/nope/%d", i)
		case 1:
			target = "/get"
		}
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, nil))
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if len(body) > 64<<10 {
		t.Errorf("/metrics is %d bytes after 5000 made-up requests", len(body))
	}
	series := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "offkit_http_requests_total{") {
			continue
		}
		series++
		for _, bad := range []string{"X1", "/nope", `route="nope`} {
			if strings.Contains(line, bad) {
				t.Errorf("unbounded label value in %s", line)
			}
		}
	}
	if series == 0 || series > 8 {
		t.Errorf("%d offkit_http_requests_total series:\n%s", series, body)
	}
	for _, want := range []string{
		`offkit_http_requests_total{code="200",method="GET",route="work"} 333`,
		`offkit_http_requests_total{code="405",method="other",route="work"}`,
		`offkit_http_requests_total{code="405",method="other",route="other"}`,
		`offkit_http_requests_total{code="404",method="GET",route="other"}`,
		`offkit_http_requests_total{code="404",method="other",route="other"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMethodAndCodeLabels(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "HEAD": "HEAD", "OPTIONS": "OPTIONS", "get": "other", "PROPFIND": "other", "": "other"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{200: "200", 599: "599", 99: "other", 600: "other", 999: "other"} {
		if got := httpstat.CodeLabel(in); got != want {
			t.Errorf("CodeLabel(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1234":          "127.0.0.1",
		"[::1]:80":                "::",
		"[2001:db8:1:2:3::4]:443": "2001:db8:1:2::",
		"[2001:db8:1:2:ff::9]:1":  "2001:db8:1:2::",
		"[::ffff:10.0.0.1]:8080":  "10.0.0.1",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientKey(a); got != want {
			t.Errorf("clientKey(%s) = %q, want %q", in, got, want)
		}
	}
}
