package natsembed

import "testing"

// TestNoMonitoring: the embedded server (hinscore up, demo, nats) serves
// no monitoring endpoints, which have no authentication: nothing but its
// client port listens.
func TestNoMonitoring(t *testing.T) {
	e, err := Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if addr := e.srv.MonitorAddr(); addr != nil {
		t.Errorf("the embedded server serves monitoring on %s", addr)
	}
}
