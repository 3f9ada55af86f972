package serve

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kit is what /metrics and /readyz tell of one active kit. Its age,
// staleness and expiry are decided by the caller (cmd/offkit asks the site's
// KitState, with its clock): this package only reports them.
type Kit struct {
	Name    string
	Version string
	// Age is how long ago the kit was created.
	Age time.Duration
	// Stale: the age is past the kit's staleness window.
	Stale bool
	// Expired: the kit's expiresAt is reached.
	Expired bool
	// ExpiresAt is zero when the kit sets none.
	ExpiresAt time.Time
}

// Kits exports the active kits on /metrics, read from list at every scrape:
//
//	offkit_site_generation                    the generation being served
//	offkit_kit_info{kit,version}              1 for each active kit
//	offkit_kit_age_seconds{kit}               now - the kit's createdAt
//	offkit_kit_stale{kit}                     1 when the age is past the kit's staleness window
//	offkit_kit_expired{kit}                   1 when the kit's expiresAt is reached
//
// An expired kit's images keep serving and /readyz stays ready, unless
// serve.yaml sets readiness.failOnExpiredKit: then /readyz fails naming
// every expired kit.
func (s *Server) Kits(list func() (generation int, kits []Kit, err error)) {
	s.reg.MustRegister(&kitCollector{list: list})
	if s.cfg.Readiness.FailOnExpiredKit {
		s.Ready("kits", func() error { return expiredKits(list) })
	}
}

// expiredKits returns an error naming every expired kit, nil when none is.
func expiredKits(list func() (int, []Kit, error)) error {
	_, kits, err := list()
	if err != nil {
		return err
	}
	var expired []string
	for _, k := range kits {
		if k.Expired {
			expired = append(expired, fmt.Sprintf("kit %s %s expired at %s", k.Name, k.Version, k.ExpiresAt.UTC().Format(time.RFC3339)))
		}
	}
	if len(expired) > 0 {
		return fmt.Errorf("%s (readiness.failOnExpiredKit)", strings.Join(expired, "; "))
	}
	return nil
}

var (
	genDesc     = prometheus.NewDesc("offkit_site_generation", "The site generation being served.", nil, nil)
	infoDesc    = prometheus.NewDesc("offkit_kit_info", "An active kit and its version.", []string{"kit", "version"}, nil)
	ageDesc     = prometheus.NewDesc("offkit_kit_age_seconds", "Seconds since the active kit was created.", []string{"kit"}, nil)
	staleDesc   = prometheus.NewDesc("offkit_kit_stale", "1 when the active kit is older than its staleness window.", []string{"kit"}, nil)
	expiredDesc = prometheus.NewDesc("offkit_kit_expired", "1 when the active kit's expiresAt is reached.", []string{"kit"}, nil)
)

type kitCollector struct {
	list func() (int, []Kit, error)
}

func (c *kitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- genDesc
	ch <- infoDesc
	ch <- ageDesc
	ch <- staleDesc
	ch <- expiredDesc
}

func (c *kitCollector) Collect(ch chan<- prometheus.Metric) {
	gen, kits, err := c.list()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(genDesc, prometheus.GaugeValue, float64(gen))
	for _, k := range kits {
		ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, k.Name, k.Version)
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, k.Age.Seconds(), k.Name)
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, gauge(k.Stale), k.Name)
		ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.GaugeValue, gauge(k.Expired), k.Name)
	}
}

func gauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
