package wiring

import (
	"net/http"
	"testing"

	"github.com/acme/postsvc/adapters/metrics"
	"github.com/acme/postsvc/config"
)

// TestMetricsRouteFollowsTheOpsSetting checks that GET /metrics is a route of the API's
// router only while no operations listener is configured.
func TestMetricsRouteFollowsTheOpsSetting(t *testing.T) {
	m, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	scrape := newScrapeHandler(m)

	extras := routerExtras(m, scrape, config.HTTP{})
	if len(extras.Routes) != 1 || extras.Routes[0].Method != http.MethodGet || extras.Routes[0].Path != "/metrics" {
		t.Errorf("without %s the API must serve GET /metrics: %+v", config.EnvName("http.ops_addr"), extras.Routes)
	}
	extras = routerExtras(m, scrape, config.HTTP{OpsAddr: ":9090"})
	if len(extras.Routes) != 0 {
		t.Errorf("with an operations listener the API must not serve /metrics: %+v", extras.Routes)
	}
	if len(extras.Middleware) != 1 {
		t.Errorf("the request metrics middleware must stay on the API's router either way")
	}
}
