package atnaingest

import (
	"strconv"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// maxSequenceID is the largest RFC 5424 sequenceId; the next is 1 again.
const maxSequenceID = 2147483647

// stampFeed records on the events of one syslog message the feed they came
// through and the sender's sequence number: the RFC 5424 structured data
// element "meta", parameter sequenceId (RFC 5424 7.3.1: 1 to 2147483647,
// one counter per originator, which ATNA senders use). The number is the
// syslog message's, so only its first event carries it: the other events
// of the same message are no duplicates of it. Whose counter it is: the
// message's HOSTNAME and APP-NAME. A sequenceId that is no such number is
// a data-quality flag on the events, never a rejection.
func stampFeed(evs []*hinscorev1.ExchangeEvent, msg syslog.Message, feed string) {
	for _, ev := range evs {
		ev.Feed = feed
	}
	value, ok := sequenceID(msg)
	if !ok || len(evs) == 0 {
		return
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 1 || n > maxSequenceID {
		for _, ev := range evs {
			ev.ReasonCodes = append(ev.ReasonCodes, quality.Code(quality.BadSyslogSequence))
		}
		return
	}
	evs[0].SequenceSource = "syslog|" + msg.Hostname + "/" + msg.AppName
	evs[0].SequenceNumber = n
}

// sequenceID is the message's meta sequenceId, if it has one.
func sequenceID(msg syslog.Message) (string, bool) {
	for _, el := range msg.StructuredData {
		if el.ID != "meta" {
			continue
		}
		for _, p := range el.Params {
			if p.Name == "sequenceId" {
				return p.Value, true
			}
		}
	}
	return "", false
}
