// Package gencache keeps what a server derives from an installed generation
// (an index, a parsed exports.json) for the last few generations. A
// generation is immutable, so each is built once: concurrent first requests
// wait for one build, and a failed build is answered from for a while (a
// broken generation is not re-read by every request), then tried again.
package gencache

import (
	"sync"
	"time"
)

// Cache holds the builds of at most Keep generations by id, the oldest
// forgotten first. A failed build is retried once it is older than Retry.
// The zero value is not usable: use New.
type Cache[T any] struct {
	keep  int
	retry time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]*entry[T]
	order []string // ids, oldest first
}

type entry[T any] struct {
	done chan struct{} // closed when v, err and at are set
	v    T
	err  error
	at   time.Time
}

// New makes a cache of keep generations whose failed builds are retried
// after retry.
func New[T any](keep int, retry time.Duration) *Cache[T] {
	return &Cache[T]{keep: max(keep, 1), retry: retry, now: time.Now, cache: map[string]*entry[T]{}}
}

// Get returns the build of generation id, calling build on first use (or
// when a failed build is older than the retry period); concurrent callers
// for one id wait for that one build.
func (c *Cache[T]) Get(id string, build func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.cache[id]
	if ok {
		select {
		case <-e.done:
			if e.err != nil && c.now().Sub(e.at) > c.retry {
				ok = false
			}
		default:
		}
	}
	if !ok {
		e = &entry[T]{done: make(chan struct{})}
		if _, had := c.cache[id]; !had {
			c.order = append(c.order, id)
		}
		c.cache[id] = e
		if len(c.order) > c.keep {
			delete(c.cache, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	if !ok {
		e.v, e.err = build()
		e.at = c.now()
		close(e.done)
	}
	<-e.done
	return e.v, e.err
}
