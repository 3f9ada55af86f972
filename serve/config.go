package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/mirror/mirrorserve"
	"github.com/offkit/offkit/schemas"
)

// Config is serve.yaml (schema: schemas/serve.schema.json). Zero fields take
// the defaults below.
type Config struct {
	Listen string `json:"listen,omitempty"`
	// HealthListen is an optional second address that serves only
	// /healthz, /readyz and /metrics, with connection slots of its own: probes
	// and scrapes pointed at it answer even when clients hold every slot of
	// Listen.
	HealthListen      string     `json:"healthListen,omitempty"`
	TLS               *TLSConfig `json:"tls,omitempty"`
	ReadHeaderTimeout Duration   `json:"readHeaderTimeout,omitempty"`
	ReadTimeout       Duration   `json:"readTimeout,omitempty"`
	// WriteTimeout bounds the whole response.
	WriteTimeout Duration `json:"writeTimeout,omitempty"`
	// WriteStallTimeout bounds the wait for a client to take the next 64
	// KiB of a response; a client that stops reading is cut off after it.
	WriteStallTimeout Duration `json:"writeStallTimeout,omitempty"`
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request.
	IdleTimeout   Duration `json:"idleTimeout,omitempty"`
	ShutdownGrace Duration `json:"shutdownGrace,omitempty"`
	// MaxConnections caps the open connections of Listen; more wait to be
	// accepted.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxConnectionsPerClient caps the open connections from one client IP
	// address (an IPv6 /64); more are closed as soon as they are accepted.
	MaxConnectionsPerClient int       `json:"maxConnectionsPerClient,omitempty"`
	MaxBodyBytes            int64     `json:"maxBodyBytes,omitempty"`
	Registry                Registry  `json:"registry,omitempty"`
	Readiness               Readiness `json:"readiness,omitempty"`
	// Authority checks tokens on the protected routes (the runbook's keys;
	// docs/authority.md). Absent or enabled: false, no route asks for one.
	Authority *authority.Options `json:"authority,omitempty"`
	// Mirror configures the Concelier and Excititor feed mirrors
	// (/concelier, /excititor).
	Mirror mirrorserve.Config `json:"mirror,omitzero"`
}

// Readiness chooses what else makes /readyz fail, besides a site that is not
// installed or readable.
type Readiness struct {
	// FailOnExpiredKit makes /readyz fail, naming the kit, while an active
	// kit's expiresAt is reached. Off by default: an expired kit's images
	// keep serving and the server stays ready (offkit_kit_expired on
	// /metrics tells).
	FailOnExpiredKit bool `json:"failOnExpiredKit,omitempty"`
}

// TLSConfig names the certificate and key files.
type TLSConfig struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Registry configures the /v2 part.
type Registry struct {
	// Disabled turns the OCI registry off.
	Disabled bool `json:"disabled,omitempty"`
	// StripPrefix removes a leading repository path ("stellaops/") from
	// the served names, after the registry host is dropped.
	StripPrefix string `json:"stripPrefix,omitempty"`
	// KeepHost serves names with their registry host
	// ("registry.example/team/app" instead of "team/app").
	KeepHost bool `json:"keepHost,omitempty"`
}

// Defaults.
const (
	DefaultListen                  = "127.0.0.1:8080"
	DefaultMaxConnections          = 1024
	DefaultMaxConnectionsPerClient = 64
	DefaultMaxBodyBytes            = 64 << 10
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultReadTimeout             = 30 * time.Second
	DefaultWriteTimeout            = 30 * time.Minute
	DefaultWriteStallTimeout       = 30 * time.Second
	DefaultIdleTimeout             = 15 * time.Second
	DefaultShutdownGrace           = 30 * time.Second
)

// Limits of the health listener (HealthListen): a few probes and scrapers
// at a time, each request small.
const (
	HealthMaxConnections          = 32
	HealthMaxConnectionsPerClient = 8
	healthTimeout                 = 10 * time.Second
)

// Duration is a time.Duration written as "10s" in YAML and JSON.
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (c Config) withDefaults() Config {
	def := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.WriteStallTimeout, DefaultWriteStallTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

// MaxConfigSize bounds serve.yaml.
const MaxConfigSize = 1 << 20

// LoadConfig reads and validates serve.yaml.
func LoadConfig(path string) (*Config, error) {
	b, err := limit.ReadFile(path, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config %w", err)
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", path, err, errdef.ErrInvalid)
	}
	if err := schemas.Validate(schemas.Serve, j); err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", path, err, errdef.ErrInvalid)
	}
	var c Config
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", path, err, errdef.ErrInvalid)
	}
	if c.Authority != nil && c.Authority.Enabled {
		if err := c.Authority.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := c.Mirror.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}
