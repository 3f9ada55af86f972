package mirrorserve

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// A name no htpasswd file has costs the same bcrypt checks as a wrong
// password of a known name (one per file), so response times do not tell
// which names exist; a remembered success still costs none, also for a
// user of the second file.
func TestBasicUnknownUserTakesBcrypt(t *testing.T) {
	src, _ := fixture(t)
	on := true
	h := newHandler(t, src, Options{Config: Config{Concelier: Part{
		Htpasswd: writeHtpasswd(t, bcryptLine(t, "ops", "s3cret")),
		Domains: []Domain{{ID: "primary", RequireAuthentication: &on,
			Htpasswd: writeHtpasswd(t, bcryptLine(t, "alice", "wonder"))}},
	}}})
	p := "/concelier/exports/mirror/primary/bundle.json"
	compares := func(auth string, code int) int64 {
		t.Helper()
		before := h.basic.compares.Load()
		if w := do(h, req{path: p, hdr: map[string]string{"Authorization": auth}}); w.Code != code {
			t.Fatalf("%d, want %d", w.Code, code)
		}
		return h.basic.compares.Load() - before
	}
	wrong := compares(basic("alice", "nope"), 401)
	if wrong != 2 {
		t.Errorf("a wrong password: %d bcrypt checks, want 2 (one per file)", wrong)
	}
	for _, user := range []string{"bob", "", strings.Repeat("x", maxBasicUser)} {
		if n := compares(basic(user, "wonder"), 401); n != wrong {
			t.Errorf("unknown user %q: %d bcrypt checks, a wrong password %d", user, n, wrong)
		}
	}
	compares(basic("alice", "wonder"), 200)
	if n := compares(basic("alice", "wonder"), 200); n != 0 {
		t.Errorf("remembered success: %d bcrypt checks", n)
	}
	// The dummy password is no one's password.
	if n := compares(basic("bob", dummyPassword), 401); n != wrong {
		t.Errorf("dummy password: %d bcrypt checks", n)
	}
}

// The dummy hash has the cost most of the file's hashes have, so that it
// takes as long as theirs.
func TestHtpasswdDummyCost(t *testing.T) {
	line := func(user string, cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return user + ":" + string(h)
	}
	for _, c := range []struct {
		lines []string
		cost  int
	}{
		{[]string{line("a", 5), line("b", 5), line("c", 6)}, 5},
		{[]string{line("a", 4)}, 4},
		{[]string{"# nobody"}, bcrypt.DefaultCost},
	} {
		f, err := loadHtpasswd(writeHtpasswd(t, c.lines...))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(f.dummy); err != nil || got != c.cost {
			t.Errorf("%d users: dummy cost %d (%v), want %d", len(f.users), got, err, c.cost)
		}
	}
}
