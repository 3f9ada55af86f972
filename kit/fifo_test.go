package kit_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/kit"
)

// A rule file or dashboard swapped for a named pipe is refused (exit 11,
// naming it) when validated, not waited on.
func TestValidateNamedPipe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	fifotest.Replace(t, p)
	done := fifotest.Guard(t, p)
	errRules := kit.CheckRules(p)
	_, errDash := kit.CheckDashboard(p)
	done()
	for _, err := range []error{errRules, errDash} {
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), p+": a named pipe, not a regular file") {
			t.Errorf("validating a named pipe: %v", err)
		}
	}
}
