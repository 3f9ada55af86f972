package verifyread_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/verifyread"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestReader(t *testing.T) {
	want := []byte("the declared bytes")
	d := digest(want)
	for _, tc := range []struct {
		name    string
		src     []byte
		size    int64
		problem verifyread.Problem // 0: no error
	}{
		{"exact", want, int64(len(want)), 0},
		{"empty", nil, 0, verifyread.Mismatch},
		{"short", want[:len(want)-1], int64(len(want)), verifyread.Short},
		{"one byte past the size", append(bytes.Clone(want), 'x'), int64(len(want)), verifyread.Long},
		{"flipped", bytes.ToUpper(want), int64(len(want)), verifyread.Mismatch},
		{"declared size too small", want, int64(len(want)) - 1, verifyread.Long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time: the checks do not depend on how the
			// source splits its reads.
			r := verifyread.New(iotest.OneByteReader(bytes.NewReader(tc.src)), "blobs/x", tc.size, d)
			got, err := io.ReadAll(r)
			if tc.problem == 0 {
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("ReadAll = %q, %v", got, err)
				}
				return
			}
			var e *verifyread.Error
			if !errors.As(err, &e) || e.Problem != tc.problem || !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "blobs/x") {
				t.Fatalf("err = %v, want problem %d naming blobs/x", err, tc.problem)
			}
			if int64(len(got)) > tc.size {
				t.Fatalf("read %d bytes past the size %d", len(got), tc.size)
			}
		})
	}
}

func TestSourceError(t *testing.T) {
	boom := errors.New("boom")
	r := verifyread.New(iotest.ErrReader(boom), "x", 3, digest([]byte("abc")))
	if _, err := io.ReadAll(r); !errors.Is(err, boom) || errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestReadAll(t *testing.T) {
	b := []byte("abc")
	if got, err := verifyread.ReadAll(bytes.NewReader(b), "x", 3, digest(b), 3); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("at the limit: %q, %v", got, err)
	}
	if _, err := verifyread.ReadAll(bytes.NewReader(b), "x", 3, digest(b), 2); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := verifyread.ReadAll(strings.NewReader("abcd"), "x", 3, digest(b), 3); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("one byte more: %v", err)
	}
}

func TestVerifyReadsTheRest(t *testing.T) {
	b := []byte("abcdef")
	r := verifyread.New(bytes.NewReader(b), "x", 6, digest(b))
	io.ReadFull(r, make([]byte, 2))
	if err := r.Verify(); err != nil || r.N() != 6 {
		t.Fatalf("Verify = %v after %d bytes", err, r.N())
	}
	r = verifyread.New(bytes.NewReader(b), "x", 6, digest([]byte("abcdeg")))
	if err := r.Verify(); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("Verify = %v", err)
	}
}

func ExampleReader() {
	b := []byte("hello")
	r := verifyread.New(strings.NewReader("hellO"), "blobs/sha256/2cf2", 5, digest(b))
	_, err := io.ReadAll(r)
	var e *verifyread.Error
	fmt.Println(errors.As(err, &e) && e.Problem == verifyread.Mismatch)
	// Output: true
}
