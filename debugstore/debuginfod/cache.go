package debuginfod

import (
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Limits of the cache of small files.
const (
	// MaxCachedFile is the largest debug file or executable kept in memory.
	MaxCachedFile = 256 << 10
	// MaxCacheBytes bounds the bytes kept, for the generation served.
	MaxCacheBytes = 64 << 20
)

// GenerationDir is what a Generations may also tell: the folder of the
// generation being served, from one read of the site's `current` link
// (site.View does). With it, small files already read are served from
// memory without opening the generation again.
type GenerationDir interface {
	Generation() (dir string, err error)
}

// smallFiles keeps the bytes of small files of the generation served,
// keyed by the generation's folder and modification time: a generation is
// immutable, and another generation (even at a reused path) drops it all.
type smallFiles struct {
	mu    sync.Mutex
	gen   string
	files map[string]*cachedFile
	bytes int64
}

type cachedFile struct {
	data []byte
	name string
	mod  time.Time
}

// genKey names the generation in folder dir.
func genKey(dir string) (string, bool) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return "", false
	}
	return dir + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10), true
}

// lookup returns the cached file for key in the generation served, and
// that generation's key ("" when src cannot tell its folder).
func (c *smallFiles) lookup(src Generations, key string) (*cachedFile, string, bool) {
	gd, ok := src.(GenerationDir)
	if !ok {
		return nil, "", false
	}
	dir, err := gd.Generation()
	if err != nil {
		return nil, "", false
	}
	gk, ok := genKey(dir)
	if !ok {
		return nil, "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gk {
		return nil, gk, false
	}
	f, ok := c.files[key]
	return f, gk, ok
}

// store reads f (size bytes, at most MaxCachedFile) and keeps it under key
// for the generation in folder genDir, when that is the generation lookup
// saw (gk) and the cache has room.
func (c *smallFiles) store(gk, genDir, key string, f io.ReaderAt, size int64, name string, mod time.Time) (*cachedFile, bool) {
	if gk == "" || size > MaxCachedFile {
		return nil, false
	}
	if k, ok := genKey(genDir); !ok || k != gk {
		return nil, false // current moved between the lookup and the open
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); int64(n) != size || err != nil && err != io.EOF {
		return nil, false
	}
	cf := &cachedFile{data: data, name: name, mod: mod}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gk {
		c.gen, c.files, c.bytes = gk, map[string]*cachedFile{}, 0
	}
	if c.bytes+size > MaxCacheBytes {
		return cf, true // served, not kept
	}
	c.files[key] = cf
	c.bytes += size
	return cf, true
}
