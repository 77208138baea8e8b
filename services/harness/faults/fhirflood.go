package faults

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FHIRFloodBody is the i-th malformed FHIR resource of a flood: each one
// different (so every one is a dead letter of its own), cycling through
// the ways a resource can be refused: not JSON (400), no resourceType
// (400), a JSON type where FHIR wants another (400), a Task with a status
// FHIR does not have (422), a message Bundle without its MessageHeader
// (422).
func FHIRFloodBody(i int) []byte {
	n := strconv.Itoa(i)
	switch i % 5 {
	case 0:
		return []byte(`{"resourceType":"Task","id":"flood-` + n + `",`)
	case 1:
		return []byte(`{"id":"flood-` + n + `","status":"requested"}`)
	case 2:
		return []byte(`{"resourceType":"Task","id":"flood-` + n + `","status":7}`)
	case 3:
		return []byte(`{"resourceType":"Task","id":"flood-` + n + `","status":"flooded","intent":"order","authoredOn":"2026-03-02T09:00:00Z"}`)
	default:
		return []byte(`{"resourceType":"Bundle","id":"flood-` + n + `","type":"message","timestamp":"2026-03-02T09:00:00Z","entry":[{"resource":{"resourceType":"Patient","id":"p` + n + `"}}]}`)
	}
}

// FHIRFloodResult counts the replies to a FHIR flood.
type FHIRFloodResult struct {
	// Sent resources posted one by one; Rejected got a 4xx with an
	// OperationOutcome holding an error; Accepted got a 2xx; Other is the
	// rest (a 5xx, a 4xx without an OperationOutcome).
	Sent, Rejected, Accepted, Other int
	// NDJSON requests of only bad lines; BadLines in them; LinesRefused
	// is the error issues of their replies (200: the bulk endpoint answers
	// per line); NDJSONOther counts those not answered 200 with an
	// OperationOutcome.
	NDJSON, BadLines, LinesRefused, NDJSONOther int
	// Statuses counts the single posts' replies by HTTP status.
	Statuses map[int]int
	// DeadLetters is what the DLQ should hold: one per bad resource and
	// per bad line.
	DeadLetters int
	Elapsed     time.Duration
}

func (r FHIRFloodResult) String() string {
	return fmt.Sprintf("%d sent: %d rejected %v, %d accepted, %d other; %d NDJSON posts of %d bad lines: %d lines refused, %d other; in %s",
		r.Sent, r.Rejected, r.Statuses, r.Accepted, r.Other, r.NDJSON, r.BadLines, r.LinesRefused, r.NDJSONOther, r.Elapsed.Round(time.Millisecond))
}

// FHIRFlood posts n malformed resources to network's endpoint at url,
// from 8 clients, and after every 100 of them an NDJSON body of linesPer
// bad lines (each line a FHIRFloodBody too, marked to differ from the
// single posts).
func FHIRFlood(ctx context.Context, url, network string, n, linesPer int) (res FHIRFloodResult, err error) {
	res.Statuses = map[int]int{}
	began := time.Now()
	defer func() { res.Elapsed = time.Since(began) }()
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer cl.CloseIdleConnections()
	token := FHIRToken(network)
	type answer struct {
		a      fhirAnswer
		ndjson bool
		err    error
	}
	jobs, answers := make(chan int), make(chan answer)
	for range 8 {
		go func() {
			for i := range jobs {
				if i < 0 { // NDJSON number -i-1
					var b strings.Builder
					for j := range linesPer {
						line := FHIRFloodBody(j)
						// Distinct from every single post and every other line.
						b.WriteString(strings.Replace(string(line), `"flood-`, fmt.Sprintf(`"flood-ndjson-%d-`, -i-1), 1))
						b.WriteByte('\n')
					}
					a, err := postFHIR(ctx, cl, url+"/fhir/"+network+"/", token, "application/fhir+ndjson", []byte(b.String()))
					answers <- answer{a, true, err}
					continue
				}
				a, err := postFHIR(ctx, cl, url+"/fhir/"+network+"/", token, "application/fhir+json", FHIRFloodBody(i))
				answers <- answer{a, false, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
			if i%100 == 99 {
				select {
				case jobs <- -(i/100 + 1):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var firstErr error
	for range n + n/100 {
		var an answer
		select {
		case an = <-answers:
		case <-ctx.Done():
			return res, fmt.Errorf("faults.FHIRFlood: %w", ctx.Err())
		}
		if an.err != nil {
			if firstErr == nil {
				firstErr = an.err
			}
			continue
		}
		if an.ndjson {
			res.NDJSON++
			res.BadLines += linesPer
			if an.a.Status != http.StatusOK || !an.a.OK {
				res.NDJSONOther++
			}
			res.LinesRefused += an.a.Errors
			continue
		}
		res.Sent++
		res.Statuses[an.a.Status]++
		switch {
		case an.a.Status >= 200 && an.a.Status < 300:
			res.Accepted++
		case an.a.Status >= 400 && an.a.Status < 500 && an.a.OK && an.a.Errors > 0:
			res.Rejected++
		default:
			res.Other++
		}
	}
	res.DeadLetters = res.Sent + res.BadLines
	if firstErr != nil {
		return res, fmt.Errorf("faults.FHIRFlood: %w", firstErr)
	}
	return res, nil
}
