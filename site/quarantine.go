package site

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// Quarantine is the record of a kit that failed verification, in
// quarantine/<time>-<id>/reason.json beside the (unverified) manifest and
// signature the kit carried. The operator's kit file is left where it was.
type Quarantine struct {
	Time           time.Time `json:"time"`
	Kit            string    `json:"kit"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	ManifestDigest string    `json:"manifestDigest,omitempty"`
	Reason         string    `json:"reason"`
	ExitCode       int       `json:"exitCode"`
}

func (s *Site) quarantine(kitPath string, cause error, now time.Time) error {
	now = now.UTC()
	id := make([]byte, 4)
	rand.Read(id)
	dir := s.path(quarDir, now.Format("20060102T150405.000000Z")+"-"+hex.EncodeToString(id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, _ := filepath.Abs(kitPath)
	q := Quarantine{Time: now.Truncate(time.Second), Kit: abs, Reason: cause.Error(), ExitCode: errdef.ExitCode(cause)}
	if f, _, err := kitfile.Open(kitPath); err == nil {
		h := sha256.New()
		q.Size, _ = copybuf.Copy(h, f)
		f.Close()
		q.SHA256 = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	if head, err := kitfile.ReadHead(kitPath); err == nil {
		q.ManifestDigest = manifest.Digest(head.ManifestBytes)
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), head.ManifestBytes, 0o444); err != nil {
			return err
		}
		if head.Signature != nil {
			if err := os.WriteFile(filepath.Join(dir, "manifest.json.sig"), head.Signature, 0o444); err != nil {
				return err
			}
		}
	}
	b, _ := json.MarshalIndent(q, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "reason.json"), append(b, '\n'), 0o444); err != nil {
		return err
	}
	return s.audit(now, "quarantine", map[string]any{"kit": abs, "sha256": q.SHA256, "reason": q.Reason, "exitCode": q.ExitCode, "dir": filepath.Base(dir)})
}

// maxReason bounds a quarantine record read back.
const maxReason = 1 << 20

// Quarantined lists the quarantine records, oldest first.
func (s *Site) Quarantined() ([]Quarantine, error) {
	entries, err := os.ReadDir(s.path(quarDir))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []Quarantine
	for _, e := range entries {
		b, err := limit.ReadRegularFile(s.path(quarDir, e.Name(), "reason.json"), maxReason)
		if err != nil {
			continue
		}
		var q Quarantine
		if json.Unmarshal(b, &q) == nil {
			out = append(out, q)
		}
	}
	return out, nil
}
