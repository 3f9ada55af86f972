package serve

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kit is what /metrics tells of one active kit.
type Kit struct {
	Name      string
	Version   string
	CreatedAt time.Time
	// StalenessWindow is zero when the kit sets none.
	StalenessWindow time.Duration
}

// Kits exports the active kits on /metrics, read from list at every scrape:
//
//	offkit_site_generation                    the generation being served
//	offkit_kit_info{kit,version}              1 for each active kit
//	offkit_kit_age_seconds{kit}               now - the kit's createdAt
//	offkit_kit_stale{kit}                     1 when the age is past the kit's staleness window
func (s *Server) Kits(list func() (generation int, kits []Kit, err error)) {
	s.reg.MustRegister(&kitCollector{list: list, now: time.Now})
}

var (
	genDesc   = prometheus.NewDesc("offkit_site_generation", "The site generation being served.", nil, nil)
	infoDesc  = prometheus.NewDesc("offkit_kit_info", "An active kit and its version.", []string{"kit", "version"}, nil)
	ageDesc   = prometheus.NewDesc("offkit_kit_age_seconds", "Seconds since the active kit was created.", []string{"kit"}, nil)
	staleDesc = prometheus.NewDesc("offkit_kit_stale", "1 when the active kit is older than its staleness window.", []string{"kit"}, nil)
)

type kitCollector struct {
	list func() (int, []Kit, error)
	now  func() time.Time
}

func (c *kitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- genDesc
	ch <- infoDesc
	ch <- ageDesc
	ch <- staleDesc
}

func (c *kitCollector) Collect(ch chan<- prometheus.Metric) {
	gen, kits, err := c.list()
	if err != nil {
		return
	}
	now := c.now()
	ch <- prometheus.MustNewConstMetric(genDesc, prometheus.GaugeValue, float64(gen))
	for _, k := range kits {
		age := now.Sub(k.CreatedAt)
		stale := 0.0
		if k.StalenessWindow > 0 && age > k.StalenessWindow {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, k.Name, k.Version)
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age.Seconds(), k.Name)
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, stale, k.Name)
	}
}
