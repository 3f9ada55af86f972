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
	for _, c := range []struct {
		level    zstd.EncoderLevel
		maxFrame int
	}{
		{zstd.SpeedDefault, 0}, {zstd.SpeedDefault, 64 << 10}, {zstd.SpeedDefault, 1 << 20},
		{zstd.SpeedDefault, 4 << 20}, {zstd.SpeedDefault, 4<<20 + 1}, {zstd.SpeedDefault, 8 << 20},
		{zstd.SpeedDefault, 32 << 20},
		// The fastest level's own window is 4 MiB: frames up to 8 MiB
		// must keep it, and so their bytes.
		{zstd.SpeedFastest, 1 << 20}, {zstd.SpeedFastest, 4 << 20}, {zstd.SpeedFastest, 8 << 20},
		{zstd.SpeedBetterCompression, 4 << 20},
	} {
		level, maxFrame := c.level, c.maxFrame
		t.Run(fmt.Sprint(level, "/", maxFrame), func(t *testing.T) {
			got, err := NewEncoder(level, maxFrame)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
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
					t.Fatalf("frame of %d bytes: %d bytes with window %d, %d with the default", len(frame), len(a), encoderWindow(level, maxFrame), len(b))
				}
			}
		})
	}
}

func TestEncoderWindow(t *testing.T) {
	for _, c := range []struct {
		level          zstd.EncoderLevel
		maxFrame, want int
	}{
		{zstd.SpeedDefault, 0, 8 << 20}, {zstd.SpeedDefault, 1, 1 << 20}, {zstd.SpeedDefault, 64 << 10, 1 << 20},
		{zstd.SpeedDefault, 1<<20 + 1, 2 << 20}, {zstd.SpeedDefault, 4 << 20, 4 << 20},
		{zstd.SpeedDefault, 4<<20 + 1, 8 << 20}, {zstd.SpeedDefault, 8 << 20, 8 << 20},
		{zstd.SpeedDefault, 32 << 20, 8 << 20},
		{zstd.SpeedFastest, 4 << 20, 4 << 20}, {zstd.SpeedFastest, 4<<20 + 1, 4 << 20}, {zstd.SpeedFastest, 0, 4 << 20},
	} {
		if got := encoderWindow(c.level, c.maxFrame); got != c.want {
			t.Errorf("encoderWindow(%v, %d) = %d, want %d", c.level, c.maxFrame, got, c.want)
		}
	}
}
