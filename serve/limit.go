package serve

import (
	"io"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener caps the connections of a listener: at most max at once
// (Accept waits for a free slot, as golang.org/x/net/netutil.LimitListener
// does) and at most perClient from one client IP address. A connection over
// the per-client cap is closed as soon as it is accepted, before anything is
// read from it, so one client cannot take the slots of everyone else.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	perClient int
	refused   prometheus.Counter
	open      prometheus.Gauge

	mu      sync.Mutex
	clients map[string]int

	closeOnce sync.Once
	done      chan struct{}
}

func newLimitListener(ln net.Listener, max, perClient int, refused prometheus.Counter, open prometheus.Gauge) *limitListener {
	return &limitListener{
		Listener: ln, sem: make(chan struct{}, max), perClient: perClient,
		refused: refused, open: open, clients: map[string]int{}, done: make(chan struct{}),
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		l.mu.Lock()
		if l.clients[key] >= l.perClient {
			l.mu.Unlock()
			c.Close()
			<-l.sem
			l.refused.Inc()
			continue
		}
		l.clients[key]++
		l.mu.Unlock()
		l.open.Inc()
		return &limitConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	if l.clients[key]--; l.clients[key] <= 0 {
		delete(l.clients, key)
	}
	l.mu.Unlock()
	l.open.Dec()
	<-l.sem
}

// clientKey is the client's IP address (the port dropped); an IPv6 client
// is its /64, the least a site hands one host.
func clientKey(a net.Addr) string {
	var ip net.IP
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.IP
	} else if host, _, err := net.SplitHostPort(a.String()); err == nil {
		ip = net.ParseIP(host)
	}
	if ip == nil {
		return a.String()
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return ip.String()
}

type limitConn struct {
	net.Conn
	l       *limitListener
	key     string
	release sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() { c.l.release(c.key) })
	return err
}

// ReadFrom lets the HTTP server send files with sendfile through the
// wrapper.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}
