package seekable

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestEncoderWindowKeepsBytes: the window NewEncoder sizes for the largest
// frame changes no byte of any frame against the encoder's default window,
// at frame sizes around the window and the single-segment boundaries, with
// one encoder reused frame after frame as a Writer reuses it.
func TestEncoderWindowKeepsBytes(t *testing.T) {
	text := bytes.Repeat([]byte("offkit carries software into air-gapped sites; "), 1<<17)
	noise := make([]byte, 9<<20)
	rand.Read(noise)
	// Compressible and incompressible bytes, and repeats far apart.
	mixed := append(append(append([]byte{}, text[:3<<20]...), noise[:2<<20]...), text[:3<<20]...)
	for _, maxFrame := range []int{0, 64 << 10, 1 << 20, 4 << 20, 4<<20 + 1, 8 << 20, 32 << 20} {
		t.Run(fmt.Sprint(maxFrame), func(t *testing.T) {
			got, err := NewEncoder(zstd.SpeedDefault, maxFrame)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
				zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true), zstd.WithLowerEncoderMem(false))
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			limit := maxFrame
			if limit == 0 {
				limit = MaxFrameSize
			}
			for i, n := range []int{0, 100, 1024, 1025, 128 << 10, 1<<20 + 7, 2 << 20, 4<<20 - 1, 4 << 20, 4<<20 + 1, 8 << 20, 9 << 20} {
				if n > limit {
					continue
				}
				src := mixed
				if i%3 == 1 {
					src = noise
				} else if i%3 == 2 {
					src = text
				}
				frame := src[:min(n, len(src))]
				if a, b := got.EncodeAll(frame, nil), want.EncodeAll(frame, nil); !bytes.Equal(a, b) {
					t.Fatalf("frame of %d bytes: %d bytes with window %d, %d with the default", len(frame), len(a), encoderWindow(maxFrame), len(b))
				}
			}
		})
	}
}

func TestEncoderWindow(t *testing.T) {
	for _, c := range []struct{ maxFrame, want int }{
		{0, 8 << 20}, {1, 1 << 20}, {64 << 10, 1 << 20}, {1<<20 + 1, 2 << 20},
		{4 << 20, 4 << 20}, {4<<20 + 1, 8 << 20}, {8 << 20, 8 << 20}, {32 << 20, 8 << 20},
	} {
		if got := encoderWindow(c.maxFrame); got != c.want {
			t.Errorf("encoderWindow(%d) = %d, want %d", c.maxFrame, got, c.want)
		}
	}
}
