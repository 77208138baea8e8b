package fhiringest

import (
	"context"
	"io"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestStandaloneChecksThePartitionCount: composed as bin/fhir-ingest is
// (service.Main), the ingest refuses to start against EVENTS that records
// another partition count, and starts with the same one.
func TestStandaloneChecksThePartitionCount(t *testing.T) {
	env := map[string]string{"HINSCORE_FHIR_ADDR": "127.0.0.1:0", "HINSCORE_FHIR_TOKENS": "neta=" + HashToken("t"),
		service.EnvEnvironment: service.Development} // the public development keys
	bustest.CheckPartitionCount(t, env, func(ctx context.Context, env *service.Env) error {
		return service.Serve(ctx, "fhir-ingest", env, io.Discard, ConfigFromEnv, New)
	})
}
