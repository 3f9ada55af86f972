package loopback

import "testing"

func TestHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost":              true,
		"LocalHost:5000":         true,
		"127.0.0.1":              true,
		"127.8.9.10:443":         true,
		"::1":                    true,
		"[::1]":                  true,
		"[::1]:5000":             true,
		"::ffff:127.0.0.1":       true,
		"[::ffff:127.0.0.1]":     true,
		"":                       false,
		"localhost.evil.example": false,
		"evil-localhost":         false,
		"128.0.0.1":              false,
		"10.0.0.1:5000":          false,
		"::2":                    false,
		"[::2]:80":               false,
		"registry.example":       false,
		"127.0.0.1.example":      false,
		"[127.0.0.1":             false,
	} {
		if got := Host(h); got != want {
			t.Errorf("Host(%q) = %v, want %v", h, got, want)
		}
	}
}
