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
