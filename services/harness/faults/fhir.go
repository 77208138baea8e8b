package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// FHIRToken is the bearer token the cluster's fhir-ingest accepts for a
// network (it is configured with the token's SHA-256 only).
func FHIRToken(network string) string { return "hinscore fault suite token for " + network }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// FHIRLoad is good FHIR traffic beside the simulator's HL7: Pairs record
// requests of Network, each a CDex-style Task posted as requested and then
// as completed with an output, so each pair is one fulfilled outcome. The
// pairs are spread over the run (pair i once i/Pairs of the plan's frames
// are acknowledged) and each post is retried until stored, as a feed does
// while the ingest restarts.
type FHIRLoad struct {
	// URL is the ingest's base URL (Cluster.FHIRURL).
	URL     string
	Network string
	Pairs   int
	// Start and Span place pair i's event time at Start + Span×i/Pairs:
	// the plan's time, compressed as the plan's, so every run of the same
	// plan stores the same rows. Zero Start: the wall clock at the post.
	Start time.Time
	Span  time.Duration
}

// At is the event time of pair i's request.
func (l FHIRLoad) At(i int) time.Time {
	if l.Start.IsZero() {
		return time.Now()
	}
	return l.Start.Add(time.Duration(int64(l.Span) * int64(i) / int64(max(l.Pairs, 1))))
}

// Events is the number of exchange events the load stores.
func (l FHIRLoad) Events() int { return 2 * l.Pairs }

// TaskPair is the i-th pair of Task versions, requested at at and
// completed a second later. Identity (id, versionId, identifier) depends
// on i only, so a re-sent post is deduplicated and the outcome id is the
// same in every run.
func TaskPair(i int, at time.Time) (requested, completed []byte) {
	at = at.UTC().Truncate(time.Second)
	common := fmt.Sprintf(`"id":"faults-task-%d","identifier":[{"system":"urn:hinscore:faults:task","value":"req-%d"}],`+
		`"intent":"order","code":{"coding":[{"system":"http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp","code":"data-request"}]},`+
		`"for":{"identifier":{"system":"urn:hinscore:faults:mrn","value":"MRN-%d"}},"authoredOn":%q,`+
		`"requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"9941339100"}},`+
		`"owner":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}`,
		i, i, i%50, at.Format(time.RFC3339))
	requested = []byte(`{"resourceType":"Task","meta":{"versionId":"1"},"status":"requested",` + common + `}`)
	completed = []byte(fmt.Sprintf(`{"resourceType":"Task","meta":{"versionId":"2"},"status":"completed","lastModified":%q,`+
		`"output":[{"type":{"coding":[{"code":"data-value"}]},"valueReference":{"reference":"DocumentReference/faults-doc-%d"}}],`,
		at.Add(time.Second).Format(time.RFC3339), i) + common + `}`)
	return requested, completed
}

// drive posts the pairs while the plan's traffic flows.
func (l FHIRLoad) drive(ctx context.Context, r *Run) error {
	cl := &http.Client{Timeout: 15 * time.Second}
	for i := range l.Pairs {
		if err := r.AfterShare(ctx, float64(i)/float64(l.Pairs)); err != nil {
			return err
		}
		req, done := TaskPair(i, l.At(i))
		for _, body := range [][]byte{req, done} {
			if err := l.store(ctx, cl, body, &r.fhirRetried); err != nil {
				return fmt.Errorf("faults.FHIRLoad: task %d: %w", i, err)
			}
		}
	}
	return nil
}

// store posts one resource until it gets a 2xx; a 4xx is an error (good
// traffic refused), anything else (no connection, 503) is tried again.
func (l FHIRLoad) store(ctx context.Context, cl *http.Client, body []byte, retried *atomic.Int64) error {
	url := l.URL + "/fhir/" + l.Network + "/Task"
	first := true
	return retry(ctx, 90*time.Second, func() (bool, error) {
		if !first {
			retried.Add(1)
		}
		first = false
		a, err := postFHIR(ctx, cl, url, FHIRToken(l.Network), "application/fhir+json", body)
		switch {
		case err != nil || a.Status >= 500:
			return false, nil
		case a.Status >= 300:
			return true, fmt.Errorf("good Task refused: %d %s", a.Status, a.Body)
		}
		return true, nil
	})
}

// retry calls try every 50 ms until it is done, ctx ends or timeout passes.
func retry(ctx context.Context, timeout time.Duration, try func() (done bool, err error)) error {
	var err error
	werr := waitFor(ctx, timeout, "stored", func() bool {
		var done bool
		done, err = try()
		return done
	})
	if err != nil {
		return err
	}
	return werr
}

// fhirAnswer is a reply of the FHIR ingest.
type fhirAnswer struct {
	Status int
	Body   []byte
	// Errors counts the OperationOutcome's issues of severity error or
	// fatal; OK says the body is an OperationOutcome.
	Errors int
	OK     bool
}

func postFHIR(ctx context.Context, cl *http.Client, url, token, contentType string, body []byte) (fhirAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fhirAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := cl.Do(req)
	if err != nil {
		return fhirAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fhirAnswer{}, err
	}
	a := fhirAnswer{Status: resp.StatusCode, Body: b}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity string `json:"severity"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) == nil && oo.ResourceType == "OperationOutcome" && len(oo.Issue) > 0 {
		a.OK = true
		for _, is := range oo.Issue {
			if is.Severity == "error" || is.Severity == "fatal" {
				a.Errors++
			}
		}
	}
	return a, nil
}
