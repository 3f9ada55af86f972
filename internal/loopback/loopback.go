// Package loopback tells a loopback host, where plain http is allowed:
// a test registry or issuer on the same machine.
package loopback

import (
	"net"
	"net/netip"
	"strings"
)

// Host reports whether host (HOST, HOST:PORT, or an IPv6 address with or
// without brackets) is localhost (in any case) or a loopback address
// (127.0.0.0/8, ::1, an IPv4 loopback mapped into IPv6).
func Host(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}
