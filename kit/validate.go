package kit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// MaxValidatedFile bounds a rule file or dashboard read for validation.
const MaxValidatedFile = 16 << 20

// ruleFile is the Prometheus rule file format (rulefmt), as much of it as we
// check: every group has a name and rules, every rule an expr and exactly
// one of record and alert.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// CheckRules validates a Prometheus rule file.
func CheckRules(path string) error {
	b, err := limit.ReadRegularFile(path, MaxValidatedFile)
	if err != nil {
		return err
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		return fmt.Errorf("rule file %s: invalid YAML: %w: %w", path, err, errdef.ErrInvalid)
	}
	if len(rf.Groups) == 0 {
		return fmt.Errorf("rule file %s: no groups: %w", path, errdef.ErrInvalid)
	}
	names := map[string]bool{}
	for i, g := range rf.Groups {
		if strings.TrimSpace(g.Name) == "" {
			return fmt.Errorf("rule file %s: groups[%d]: no name: %w", path, i, errdef.ErrInvalid)
		}
		if names[g.Name] {
			return fmt.Errorf("rule file %s: groups[%d]: name %q repeated: %w", path, i, g.Name, errdef.ErrInvalid)
		}
		names[g.Name] = true
		if len(g.Rules) == 0 {
			return fmt.Errorf("rule file %s: group %q: no rules: %w", path, g.Name, errdef.ErrInvalid)
		}
		for j, r := range g.Rules {
			if strings.TrimSpace(r.Expr) == "" {
				return fmt.Errorf("rule file %s: group %q rules[%d]: no expr: %w", path, g.Name, j, errdef.ErrInvalid)
			}
			if (r.Record == "") == (r.Alert == "") {
				return fmt.Errorf("rule file %s: group %q rules[%d]: needs exactly one of record and alert: %w", path, g.Name, j, errdef.ErrInvalid)
			}
		}
	}
	return nil
}

// CheckDashboard validates a Grafana dashboard and returns its uid ("" if it
// has none).
func CheckDashboard(path string) (string, error) {
	b, err := limit.ReadRegularFile(path, MaxValidatedFile)
	if err != nil {
		return "", err
	}
	var d struct {
		Title *string `json:"title"`
		UID   *string `json:"uid"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return "", fmt.Errorf("dashboard %s: invalid JSON: %w: %w", path, err, errdef.ErrInvalid)
	}
	if dec.More() {
		return "", fmt.Errorf("dashboard %s: data after the JSON object: %w", path, errdef.ErrInvalid)
	}
	if d.Title == nil || strings.TrimSpace(*d.Title) == "" {
		return "", fmt.Errorf("dashboard %s: no title: %w", path, errdef.ErrInvalid)
	}
	if d.UID == nil {
		return "", nil
	}
	return *d.UID, nil
}
