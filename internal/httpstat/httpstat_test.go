package httpstat

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// readerFrom is a ResponseWriter whose ReadFrom is counted (net/http's
// uses sendfile there).
type readerFrom struct {
	*httptest.ResponseRecorder
	calls int
}

func (r *readerFrom) ReadFrom(src io.Reader) (int64, error) {
	r.calls++
	return io.Copy(r.ResponseRecorder.Body, src)
}

func TestWriterRecords(t *testing.T) {
	rr := httptest.NewRecorder()
	w := &Writer{ResponseWriter: rr}
	if w.Status() != http.StatusOK || w.Code != 0 {
		t.Fatalf("nothing written: status %d, code %d", w.Status(), w.Code)
	}
	w.WriteHeader(http.StatusNotFound)
	w.WriteHeader(http.StatusTeapot) // a second WriteHeader does not change what was sent
	io.WriteString(w, "hello")
	if w.Code != http.StatusNotFound || w.Status() != http.StatusNotFound || w.Bytes != 5 || rr.Body.String() != "hello" {
		t.Fatalf("code %d, bytes %d, body %q", w.Code, w.Bytes, rr.Body)
	}
	w = &Writer{ResponseWriter: httptest.NewRecorder()}
	w.Write([]byte("x"))
	if w.Code != http.StatusOK {
		t.Errorf("a body without WriteHeader: code %d", w.Code)
	}
	// http.ResponseController reaches the writer below through Unwrap.
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Errorf("flush through the controller: %v", err)
	}
}

func TestWriterReadFrom(t *testing.T) {
	inner := &readerFrom{ResponseRecorder: httptest.NewRecorder()}
	w := &Writer{ResponseWriter: inner}
	n, err := io.Copy(w, io.LimitReader(strings.NewReader("file body"), 100)) // as http.ServeContent does
	if err != nil || n != 9 || w.Bytes != 9 || w.Code != http.StatusOK || inner.calls != 1 {
		t.Fatalf("n %d, err %v, bytes %d, code %d, inner ReadFrom %d", n, err, w.Bytes, w.Code, inner.calls)
	}
	// Without a ReadFrom below, a plain copy.
	rr := httptest.NewRecorder()
	w = &Writer{ResponseWriter: rr}
	if n, err := w.ReadFrom(strings.NewReader("abc")); n != 3 || err != nil || rr.Body.String() != "abc" || w.Bytes != 3 {
		t.Fatalf("n %d, err %v, body %q", n, err, rr.Body)
	}
}

// With Pace, the body goes down in pieces of at most Chunk bytes, Pace
// before each, whether written or read from a (limited) reader.
func TestWriterPace(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes
	for name, write := range map[string]func(w *Writer) (int64, error){
		"write": func(w *Writer) (int64, error) { n, err := w.Write(body); return int64(n), err },
		"readFrom": func(w *Writer) (int64, error) {
			return w.ReadFrom(&io.LimitedReader{R: bytes.NewReader(append(body, "beyond"...)), N: int64(len(body))})
		},
		"readFrom unlimited": func(w *Writer) (int64, error) { return w.ReadFrom(bytes.NewReader(body)) },
	} {
		inner := &readerFrom{ResponseRecorder: httptest.NewRecorder()}
		var paces int
		w := &Writer{ResponseWriter: inner, Chunk: 30, Pace: func() { paces++ }}
		n, err := write(w)
		if err != nil || n != 100 || w.Bytes != 100 || !bytes.Equal(inner.Body.Bytes(), body) {
			t.Errorf("%s: n %d, err %v, bytes %d, body %q", name, n, err, w.Bytes, inner.Body)
		}
		if paces != 4 {
			t.Errorf("%s: %d paces for 100 bytes in chunks of 30, want 4", name, paces)
		}
		w.Flush()
		if paces != 5 || !inner.Flushed {
			t.Errorf("%s: flush: %d paces, flushed %v", name, paces, inner.Flushed)
		}
	}
}

// errWriter fails after max bytes.
type errWriter struct {
	http.ResponseWriter
	max int
}

func (e *errWriter) Write(b []byte) (int, error) {
	if len(b) > e.max {
		n, _ := e.ResponseWriter.Write(b[:e.max])
		e.max -= n
		return n, errors.New("broken pipe")
	}
	e.max -= len(b)
	return e.ResponseWriter.Write(b)
}

func TestWriterCountsShortWrites(t *testing.T) {
	for _, pace := range []func(){nil, func() {}} {
		w := &Writer{ResponseWriter: &errWriter{ResponseWriter: httptest.NewRecorder(), max: 45}, Chunk: 20, Pace: pace}
		n, err := w.Write(make([]byte, 100))
		if err == nil || n != 45 || w.Bytes != 45 {
			t.Errorf("pace %v: n %d, err %v, bytes %d", pace != nil, n, err, w.Bytes)
		}
	}
}
