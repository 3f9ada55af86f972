package registry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/internal/errdef"
)

var (
	isolatedDesc = prometheus.NewDesc("offkit_registry_kits_isolated",
		"Kits none of whose images the registry serves, because one of them cannot be loaded.", nil, nil)
	kitIsolatedDesc = prometheus.NewDesc("offkit_registry_kit_isolated",
		"1 for a kit whose images the registry does not serve.", []string{"kit"}, nil)
	withheldDesc = prometheus.NewDesc("offkit_registry_tags_withheld",
		"Tags a kit claims that the registry does not serve, because a kit active before it serves them.", []string{"kit"}, nil)
)

// Describe implements prometheus.Collector. A Registry exports, for the
// generation being served:
//
//	offkit_registry_kits_isolated            kits whose images are not served
//	offkit_registry_kit_isolated{kit}        1 for each such kit
//	offkit_registry_tags_withheld{kit}       tags of a kit not served: a kit active first serves them
//
// The kit label takes the names of the installed kits only.
func (g *Registry) Describe(ch chan<- *prometheus.Desc) {
	ch <- isolatedDesc
	ch <- kitIsolatedDesc
	ch <- withheldDesc
}

// Collect implements prometheus.Collector.
func (g *Registry) Collect(ch chan<- prometheus.Metric) {
	s, err := g.current()
	if errors.Is(err, errdef.ErrNotFound) {
		s = &snapshot{}
	} else if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(isolatedDesc, prometheus.GaugeValue, float64(len(s.isolated)))
	for _, i := range s.isolated {
		ch <- prometheus.MustNewConstMetric(kitIsolatedDesc, prometheus.GaugeValue, 1, i.kit)
	}
	withheld := map[string]int{}
	for _, w := range s.withheld {
		withheld[w.kit]++
	}
	for kit, n := range withheld {
		ch <- prometheus.MustNewConstMetric(withheldDesc, prometheus.GaugeValue, float64(n), kit)
	}
}
