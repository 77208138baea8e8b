package fhirmap

import (
	"fmt"
	"strings"
	"testing"
)

// notificationTask is a Task version as a notification carries it.
func notificationTask(id, status string) string {
	return `{"fullUrl": "https://ehr.example/fhir/Task/` + id + `", "resource": {"resourceType": "Task", "id": "` + id + `",
 "identifier": [{"system": "urn:t", "value": "` + id + `"}], "status": "` + status + `", "intent": "order",
 "lastModified": "2026-03-02T09:58:00Z", "authoredOn": "2026-03-02T09:00:00Z",
 "requester": {"identifier": {"system": "urn:npi", "value": "1"}}, "owner": {"identifier": {"system": "urn:npi", "value": "2"}}}}`
}

// TestSubscriptionEventNumbers: a subscription notification's event
// numbers, the one FHIR counter, are recorded on the events of the
// entries they name (R4B SubscriptionStatus, by focus; the R4 backport's
// Parameters, by focus or, for one event, the count since the start);
// numbers that cannot be read, or no subscription, record none and the
// notification is mapped all the same.
func TestSubscriptionEventNumbers(t *testing.T) {
	r4b := `{"resourceType": "SubscriptionStatus", "status": "active", "type": "event-notification",
 "eventsSinceSubscriptionStart": "12", "subscription": {"reference": "Subscription/s1"},
 "notificationEvent": [{"eventNumber": "11", "focus": {"reference": "Task/a"}}, {"eventNumber": "12", "focus": {"reference": "https://ehr.example/fhir/Task/b"}}]}`
	backport := func(since, number string) string {
		return `{"resourceType": "Parameters", "parameter": [{"name": "subscription", "valueReference": {"reference": "Subscription/s2"}},
 {"name": "events-since-subscription-start", "valueString": "` + since + `"}` + number + `]}`
	}
	perEvent := `, {"name": "notification-event", "part": [{"name": "event-number", "valueString": "40"}, {"name": "focus", "valueReference": {"reference": "Task/b"}}]}`
	for _, tc := range []struct {
		name, status string
		tasks        []string
		want         string
	}{
		{"R4B, two events by focus", r4b, []string{"a", "b"}, "a=fhir|Subscription/s1#11 b=fhir|Subscription/s1#12"},
		{"backport, one event, the count", backport("7", ""), []string{"a"}, "a=fhir|Subscription/s2#7"},
		{"backport, two events, no per-event numbers", backport("7", ""), []string{"a", "b"}, "a=#0 b=#0"},
		{"backport, a number by focus", backport("41", perEvent), []string{"a", "b"}, "a=#0 b=fhir|Subscription/s2#40"},
		{"backport, a count that is no number", backport("seven", ""), []string{"a"}, "a=#0"},
		{"no status entry", "", []string{"a"}, "a=#0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var entries []string
			if tc.status != "" {
				entries = append(entries, `{"resource": `+tc.status+`}`)
			}
			for _, id := range tc.tasks {
				entries = append(entries, notificationTask(id, "completed"))
			}
			body := `{"resourceType": "Bundle", "type": "history", "entry": [` + strings.Join(entries, ",") + `]}`
			res, err := testMapper().Map(Input{Network: "neta", Body: []byte(body), Ingest: testIngest})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range res.Events {
				id := ev.GetCorrelationKey()[strings.LastIndex(ev.GetCorrelationKey(), "|")+1:]
				got = append(got, fmt.Sprintf("%s=%s#%d", id, ev.GetSequenceSource(), ev.GetSequenceNumber()))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
