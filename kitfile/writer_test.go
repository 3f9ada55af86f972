package kitfile_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/kitfile"
)

// lyingSums says it has size bytes and writes body.
type lyingSums struct {
	size int64
	body string
}

func (s lyingSums) Size() int64 { return s.size }
func (s lyingSums) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, s.body)
	return int64(n), err
}

// A SHA256SUMS that writes other than the size it announced is refused by
// WriteHead, naming it, whether it writes fewer bytes or more.
func TestWriteHeadRefusesSumsOfAnotherSize(t *testing.T) {
	for _, s := range []lyingSums{{10, "short\n"}, {3, "longer\n"}} {
		w, err := kitfile.NewWriter(io.Discard, time.Unix(0, 0), kitfile.WriterOptions{Level: 3, FrameSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		err = w.WriteHead([]byte(`{}`), nil, s)
		w.Close()
		if err == nil || !strings.Contains(err.Error(), kitfile.SumsPath) {
			t.Fatalf("sums of %d bytes said to be %d: err = %v, want a refusal naming %s", len(s.body), s.size, err, kitfile.SumsPath)
		}
	}
	w, err := kitfile.NewWriter(io.Discard, time.Unix(0, 0), kitfile.WriterOptions{Level: 3, FrameSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteHead([]byte(`{}`), nil, bytes.NewReader([]byte("exact\n"))); err != nil {
		t.Fatal(err)
	}
}
