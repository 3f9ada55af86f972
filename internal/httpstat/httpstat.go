// Package httpstat records what a handler answered, for metrics and audit
// lines: the status code and the body bytes of a response.
package httpstat

import (
	"io"
	"net/http"
	"strconv"
)

// Writer is an http.ResponseWriter that records the status and the body
// size of the response written through it. It passes ReadFrom on (so that
// a file body keeps sendfile) and Flush, and has Unwrap, so that
// http.ResponseController reaches the writer below.
//
// With Pace set, the body goes down in pieces of at most Chunk bytes and
// Pace is called before each piece and before each Flush (serve moves the
// connection's write deadline there).
type Writer struct {
	http.ResponseWriter
	// Code is the first status written (http.StatusOK for a body without
	// WriteHeader), 0 until then.
	Code int
	// Bytes counts the body bytes written.
	Bytes int64

	Pace  func()
	Chunk int64 // with Pace: the largest piece; 0 is no bound
}

// Status is the status the response has: Code, or http.StatusOK when the
// handler wrote nothing (which net/http answers with 200).
func (w *Writer) Status() int {
	if w.Code == 0 {
		return http.StatusOK
	}
	return w.Code
}

// CodeLabel is a status code as a metrics label: the code, or "other"
// outside 100-599, so a handler cannot mint label values.
func CodeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// WriteHeader implements http.ResponseWriter.
func (w *Writer) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	if w.Pace == nil {
		n, err := w.ResponseWriter.Write(b)
		w.Bytes += int64(n)
		return n, err
	}
	var done int
	for len(b) > 0 {
		c := b[:w.piece(int64(len(b)))]
		w.Pace()
		n, err := w.ResponseWriter.Write(c)
		done += n
		w.Bytes += int64(n)
		if err != nil {
			return done, err
		}
		b = b[n:]
	}
	return done, nil
}

// piece is how much of n bytes the next piece takes.
func (w *Writer) piece(n int64) int64 {
	if w.Chunk <= 0 {
		return n
	}
	return min(n, w.Chunk)
}

// ReadFrom implements io.ReaderFrom with the writer below's ReadFrom when
// it has one (sendfile for a file), else io.Copy.
func (w *Writer) ReadFrom(src io.Reader) (int64, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	copyAll := func(r io.Reader) (int64, error) { return io.Copy(writerOnly{w.ResponseWriter}, r) }
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		copyAll = rf.ReadFrom
	}
	if w.Pace == nil {
		n, err := copyAll(src)
		w.Bytes += n
		return n, err
	}
	// http.ServeContent hands an *io.LimitedReader over the file; keep that
	// shape (one level) so that the connection still uses sendfile.
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: 1<<63 - 1}
	}
	var total int64
	for lr.N > 0 {
		want := w.piece(lr.N)
		w.Pace()
		n, err := copyAll(&io.LimitedReader{R: lr.R, N: want})
		lr.N -= n
		total += n
		w.Bytes += n
		if err != nil {
			return total, err
		}
		if n < want {
			break // the source is at its end
		}
	}
	return total, nil
}

// Flush implements http.Flusher when the writer below does (else it does
// nothing).
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.Pace != nil {
			w.Pace()
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer below.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides any ReadFrom method, so io.Copy does not loop back.
type writerOnly struct{ io.Writer }
