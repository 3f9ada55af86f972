package mirrorserve

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// A line over the scanner's bound is refused naming the file and the line,
// like every other htpasswd refusal.
func TestHtpasswdLongLine(t *testing.T) {
	src, _ := fixture(t)
	path := writeHtpasswd(t, "# operators", bcryptLine(t, "ops", "s3cret"), "u:"+strings.Repeat("x", maxHtpasswdLine))
	_, err := New(src, Options{Config: Config{Concelier: Part{Htpasswd: path}}})
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%s:3: line over %d bytes", path, maxHtpasswdLine)) {
		t.Errorf("a line of %d bytes: %v", maxHtpasswdLine+2, err)
	}
}

// A 400 quotes the head of the segment at fault, not all of it: the client
// chose it, up to the server's header limit.
func TestBadSegmentQuoteBounded(t *testing.T) {
	src, _ := fixture(t)
	h := newHandler(t, src, Options{})
	seg := "%7E" + strings.Repeat("x", 40<<10)
	w := get(h, "/excititor/mirror/"+seg+"/index")
	if w.Code != 400 || !strings.Contains(w.Body.String(), "is not a valid name") || !strings.Contains(w.Body.String(), `"%7Exxxx`) {
		t.Fatalf("%d %.200q", w.Code, w.Body)
	}
	if w.Body.Len() > 512 {
		t.Errorf("a 400 of %d bytes for a segment of %d", w.Body.Len(), len(seg))
	}
}
