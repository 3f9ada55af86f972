package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/schemas"
)

// Config is serve.yaml (schema: schemas/serve.schema.json). Zero fields take
// the defaults below.
type Config struct {
	Listen            string     `json:"listen,omitempty"`
	TLS               *TLSConfig `json:"tls,omitempty"`
	ReadHeaderTimeout Duration   `json:"readHeaderTimeout,omitempty"`
	ReadTimeout       Duration   `json:"readTimeout,omitempty"`
	WriteTimeout      Duration   `json:"writeTimeout,omitempty"`
	IdleTimeout       Duration   `json:"idleTimeout,omitempty"`
	ShutdownGrace     Duration   `json:"shutdownGrace,omitempty"`
	MaxConnections    int        `json:"maxConnections,omitempty"`
	MaxBodyBytes      int64      `json:"maxBodyBytes,omitempty"`
	Registry          Registry   `json:"registry,omitempty"`
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
	DefaultListen         = "127.0.0.1:8080"
	DefaultMaxConnections = 1024
	DefaultMaxBodyBytes   = 64 << 10
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
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 30*time.Second)
	def(&c.WriteTimeout, 30*time.Minute)
	def(&c.IdleTimeout, 2*time.Minute)
	def(&c.ShutdownGrace, 30*time.Second)
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
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
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config %s: %w", path, errdef.ErrNotFound)
		}
		return nil, err
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("config %s: over %d bytes: %w", path, MaxConfigSize, errdef.ErrInvalid)
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", path, err, errdef.ErrInvalid)
	}
	if err := schemas.Validate(schemas.Serve, j); err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", path, err, errdef.ErrInvalid)
	}
	var c Config
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", path, err, errdef.ErrInvalid)
	}
	return &c, nil
}
