package simulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// fhirWriteTimeout bounds one POST of a FHIR body.
const fhirWriteTimeout = 10 * time.Second

// runFHIR plays a FHIR feed: each body POSTed in delivery order to the
// network's base URL (`.../fhir/{network}/`) with the FHIRToken as its
// bearer token and, for a batch or transaction and its response, the
// X-Correlation-ID. One at a time: the next body goes once the ingest
// has stored (2xx) or refused (4xx) the last, so the feed keeps its order.
// 5xx, 429 and broken connections are retried until ReconnectWithin.
// A refused body is a valid message rejected: counted failed.
func (s *sender) runFHIR(ctx context.Context) error {
	client := &http.Client{Timeout: fhirWriteTimeout}
	defer client.CloseIdleConnections()
	url := s.addr
	if !strings.HasSuffix(url, "/") {
		url += "/"
	}
	s.paceStart = time.Now()
	for i, m := range s.msgs {
		if err := pace(ctx, s.paceStart, i, s.rate); err != nil {
			return fmt.Errorf("%s: %w", s.stats.Network, err)
		}
		h := http.Header{}
		h.Set("Content-Type", "application/fhir+json")
		if s.cfg.FHIRToken != "" {
			h.Set("Authorization", "Bearer "+s.cfg.FHIRToken)
		}
		if m.CorrelationID != "" {
			h.Set("X-Correlation-ID", m.CorrelationID)
		}
		sent := s.stats.Sent
		accepted, err := postCopy(ctx, client, s.cfg.ReconnectWithin, url, h, m.Raw, &s.stats.Sent, &s.stats.Resent)
		s.sentN.Add(int64(s.stats.Sent - sent))
		if err != nil {
			return fmt.Errorf("%s: %w", s.stats.Network, err)
		}
		s.ackedN.Add(1)
		if accepted {
			s.stats.Accepted++
		} else {
			s.stats.Failed++
		}
		if s.cfg.Acked != nil {
			s.cfg.Acked(s.stats.Network, m, accepted, time.Now())
		}
	}
	return nil
}
