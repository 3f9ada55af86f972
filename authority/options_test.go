package authority

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:01":     time.Second,
		"00:10:00":     10 * time.Minute,
		"00:30:00":     30 * time.Minute,
		"01:02:03":     time.Hour + 2*time.Minute + 3*time.Second,
		"1.00:00:00":   24 * time.Hour,
		"00:00:00.5":   500 * time.Millisecond,
		"-00:00:01":    -time.Second,
		"90s":          90 * time.Second,
		"15m":          15 * time.Minute,
		"00:00:00.001": time.Millisecond,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "00:60:00", "24:00:00", "0:0", "aa:bb:cc", "00:00:00.", "00:00:00.1234567890", "1.2.00:00:00", "00:00:+1"} {
		if _, err := ParseDuration(in); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("ParseDuration(%q) = %v; want ErrInvalid", in, err)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 10 * time.Minute, 25*time.Hour + 500*time.Millisecond, -2 * time.Second} {
		back, err := ParseDuration(Duration(d).String())
		if err != nil || back != d {
			t.Errorf("round trip %v: %q → %v, %v", d, Duration(d).String(), back, err)
		}
	}
}

// The runbook's configuration snippet, as YAML and as JSON, gives the runbook's values.
func TestOptionsRunbookSnippet(t *testing.T) {
	const y = `
enabled: true
allowAnonymousFallback: false
issuer: "https://authority.internal"
audiences:
  - "api://concelier"
requiredScopes:
  - "concelier.jobs.trigger"
bypassNetworks:
  - "127.0.0.1/32"
  - "::1/128"
tokenClockSkewSeconds: 60
resilience:
  enableRetries: true
  retryDelays:
    - "00:00:01"
    - "00:00:02"
    - "00:00:05"
  allowOfflineCacheFallback: true
  offlineCacheTolerance: "00:10:00"
`
	var o Options
	if err := yaml.Unmarshal([]byte(y), &o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Resilience.Delays(), DefaultRetryDelays()) || o.Resilience.Tolerance() != 10*time.Minute || o.Skew() != time.Minute {
		t.Fatalf("options = %+v", o)
	}
	j, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Options
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, o) {
		t.Fatalf("JSON round trip: %+v != %+v", back, o)
	}
}

func TestOptionsDefaults(t *testing.T) {
	var r Resilience
	if !reflect.DeepEqual(r.Delays(), DefaultRetryDelays()) || r.Tolerance() != DefaultOfflineCacheTolerance || !r.OfflineFallback() {
		t.Fatalf("zero Resilience: delays %v tolerance %v", r.Delays(), r.Tolerance())
	}
	r.RetryDelays = []Duration{0, Duration(-time.Second)}
	if !reflect.DeepEqual(r.Delays(), DefaultRetryDelays()) {
		t.Fatalf("only zero/negative delays: %v, want the default", r.Delays())
	}
	r.RetryDelays = []Duration{Duration(-time.Second), Duration(3 * time.Second), 0}
	if !reflect.DeepEqual(r.Delays(), []time.Duration{3 * time.Second}) {
		t.Fatalf("delays %v, want [3s]", r.Delays())
	}
	f := false
	r.EnableRetries = &f
	if len(r.Delays()) != 0 {
		t.Fatalf("retries disabled: delays %v", r.Delays())
	}
	r.AllowOfflineCacheFallback = &f
	if r.Tolerance() != 0 {
		t.Fatalf("fallback off: tolerance %v", r.Tolerance())
	}
	if (Options{}).Skew() != 60*time.Second || (Options{}).Lifetime() != DefaultCacheLifetime {
		t.Fatal("zero Options defaults")
	}
}

func TestOptionsValidate(t *testing.T) {
	good := Options{Enabled: true, Issuer: "https://authority.internal", Audiences: []string{"api://concelier"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Options){
		"no issuer":          func(o *Options) { o.Issuer = "" },
		"http issuer":        func(o *Options) { o.Issuer = "http://authority.internal" },
		"http loopback off":  func(o *Options) { o.Issuer = "http://127.0.0.1:8080" },
		"issuer query":       func(o *Options) { o.Issuer = "https://a.internal/?x=1" },
		"no audience":        func(o *Options) { o.Audiences = nil },
		"bad cidr":           func(o *Options) { o.BypassNetworks = []string{"10.0.0.0/33"} },
		"bad proxy":          func(o *Options) { o.TrustedProxies = []string{"proxy"} },
		"negative skew":      func(o *Options) { o.TokenClockSkewSeconds = -1 },
		"negative tolerance": func(o *Options) { o.Resilience.OfflineCacheTolerance = Duration(-time.Minute) },
	} {
		o := good
		mut(&o)
		if err := o.Validate(); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	o := good
	o.Issuer, o.AllowLoopbackHTTP = "http://127.0.0.1:8080", true
	if err := o.Validate(); err != nil {
		t.Errorf("http loopback allowed: %v", err)
	}
}
