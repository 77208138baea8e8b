package service

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterKeepsTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	var err error
	a := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	a.Inc()
	b := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	if err != nil || b != a {
		t.Fatalf("a second registration under the same name: %v, same collector %v", err, b == a)
	}
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other help"}), &err)
	if err == nil {
		t.Fatal("a different collector under a taken name was accepted")
	}
}
