package site

import "time"

// Audit appends one JSON line to ROOT/audit.log: {"time", "event", fields…},
// as install, rollback and quarantine do, under the site lock s holds. It is
// for records of other packages (an Authority refresh); a Site opened
// read-only refuses.
func (s *Site) Audit(now time.Time, event string, fields map[string]any) error {
	if s.readOnly {
		return errReadOnly
	}
	return s.audit(now, event, fields)
}
