package mirrorserve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// MaxHtpasswdSize bounds an htpasswd file.
const MaxHtpasswdSize = 4 << 20

// maxHtpasswdLine bounds one line of an htpasswd file.
const maxHtpasswdLine = 64 << 10

// htpasswd is a bcrypt htpasswd file (`htpasswd -B`): user → hash.
type htpasswd struct {
	path  string
	users map[string][]byte
	// dummy is a bcrypt hash of no user's password, at the cost most of
	// the file's hashes have (bcrypt.DefaultCost for a file without
	// users): a name the file lacks is compared with it, so that it takes
	// as long as a wrong password and response times do not tell which
	// names exist.
	dummy []byte
}

// dummyPassword is what htpasswd.dummy hashes; a match with it is never a
// success.
const dummyPassword = "offkit: no such user"

// loadHtpasswd reads an htpasswd file whose every hash is bcrypt ($2a$,
// $2b$, $2y$); any other hash (MD5 $apr1$, {SHA}, crypt, plain) is refused,
// naming the line.
func loadHtpasswd(path string) (*htpasswd, error) {
	b, err := limit.ReadFile(path, MaxHtpasswdSize)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %w", err)
	}
	h := &htpasswd{path: path, users: map[string][]byte{}}
	costs := map[int]int{} // cost → users
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxHtpasswdLine)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd %s:%d: not user:hash: %w", path, n, errdef.ErrInvalid)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q: not a bcrypt hash (create the file with htpasswd -B): %w", path, n, user, errdef.ErrInvalid)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q: %v: %w", path, n, user, err, errdef.ErrInvalid)
		}
		costs[cost]++
		if _, dup := h.users[user]; dup {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q listed twice: %w", path, n, user, errdef.ErrInvalid)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("htpasswd %s:%d: line over %d bytes: %w", path, n, maxHtpasswdLine, errdef.ErrInvalid)
	} else if err != nil {
		return nil, fmt.Errorf("htpasswd %s:%d: %w: %w", path, n, err, errdef.ErrInvalid)
	}
	cost := bcrypt.DefaultCost
	for c, n := range costs { // the most common; of equals, the highest
		if n > costs[cost] || (n == costs[cost] && c > cost) {
			cost = c
		}
	}
	if h.dummy, err = bcrypt.GenerateFromPassword([]byte(dummyPassword), cost); err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return h, nil
}

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// basicChecker checks Basic credentials against htpasswd files. A
// successful check is remembered for basicCacheTTL, keyed by a sha256 of the
// file and the credentials (never the password itself), so a client that
// sends the same credentials on every request costs one bcrypt per
// basicCacheTTL; a failed one costs one bcrypt per file, whether the file
// has the name or not (then against the file's dummy hash), so response
// times do not tell which names exist. bcrypt checks run on at most half
// the cores at once (at least one), so wrong passwords cannot take every
// core.
type basicChecker struct {
	now func() time.Time
	sem chan struct{}
	// compares counts bcrypt checks run (for tests and metrics).
	compares atomic.Int64

	mu    sync.Mutex
	cache map[[32]byte]time.Time // expiry
}

const (
	basicCacheTTL    = 5 * time.Minute
	basicCacheMax    = 4096
	maxBasicUser     = 256
	maxBasicPassword = 1024
)

func newBasicChecker(now func() time.Time) *basicChecker {
	return &basicChecker{now: now, sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), cache: map[[32]byte]time.Time{}}
}

func credKey(file, user, pass string) [32]byte {
	h := sha256.New()
	for _, s := range []string{file, user, pass} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// check reports whether user:pass is in one of files.
func (c *basicChecker) check(files []*htpasswd, user, pass string) bool {
	if len(user) > maxBasicUser || len(pass) > maxBasicPassword {
		return false
	}
	now := c.now()
	// A remembered success answers before any bcrypt.
	for _, f := range files {
		if _, ok := f.users[user]; !ok {
			continue
		}
		c.mu.Lock()
		exp, hit := c.cache[credKey(f.path, user, pass)]
		c.mu.Unlock()
		if hit && now.Before(exp) {
			return true
		}
	}
	for _, f := range files {
		hash, ok := f.users[user]
		if !ok {
			c.compare(f.dummy, pass) // as long as a wrong password
			continue
		}
		if !c.compare(hash, pass) {
			continue
		}
		c.remember(credKey(f.path, user, pass), now)
		return true
	}
	return false
}

// compare reports whether pass is the password of the bcrypt hash.
func (c *basicChecker) compare(hash []byte, pass string) bool {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.compares.Add(1)
	return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
}

// remember caches the successful check k until now + basicCacheTTL.
func (c *basicChecker) remember(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= basicCacheMax {
		for k2, e := range c.cache { // drop the expired, else any one
			if !now.Before(e) || len(c.cache) >= basicCacheMax {
				delete(c.cache, k2)
			}
			if len(c.cache) < basicCacheMax/2 {
				break
			}
		}
	}
	c.cache[k] = now.Add(basicCacheTTL)
}
