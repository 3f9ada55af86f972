package site

import "time"

// The one place that decides a kit's age, staleness and expiry: `offkit
// status` and the /metrics and /readyz of `offkit serve` all ask these, with
// the clock they were given.

// Age is how long ago the kit was created, at now.
func (k KitState) Age(now time.Time) time.Duration { return now.Sub(k.CreatedAt) }

// StalenessWindow is the kit's stalenessWindowHours, zero when it sets none.
func (k KitState) StalenessWindow() time.Duration {
	return time.Duration(k.StalenessWindowHours) * time.Hour
}

// Stale reports whether the kit's age at now is past its staleness window:
// a kit exactly the window old is not yet stale; a kit without a window
// never is.
func (k KitState) Stale(now time.Time) bool {
	w := k.StalenessWindow()
	return w > 0 && k.Age(now) > w
}

// Expired reports whether the kit's expiresAt is reached at now (at
// expiresAt itself it has expired, as verify and install decide); a kit
// without expiresAt never expires.
func (k KitState) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}
