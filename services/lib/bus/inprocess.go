package bus

import (
	"context"
	"errors"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrCodeDuplicateInProcess is JetStream's answer (409, 10158, "duplicate
// message id is in process") to a publish whose Msg-Id another publish is
// still storing, which a clustered stream gives while the first is being
// replicated. It is not a failure: the first publish either stores (and
// the copy is then a duplicate) or fails (and the copy must be stored).
// nats.go names no constant for it.
const ErrCodeDuplicateInProcess jetstream.ErrorCode = 10158

// DuplicateInProcess reports whether err is that answer.
func DuplicateInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == ErrCodeDuplicateInProcess
}

// inProcessRetry is how long a publish waits before it asks again about a
// Msg-Id still in process: a replicated store takes milliseconds.
const inProcessRetry = 10 * time.Millisecond

// PublishSettled publishes msg and waits for its PubAck, asking again
// while JetStream answers that a publish of the same Msg-Id is in process,
// until ctx ends: the answer it finally gives (stored, duplicate of what
// the other stored, or a failure) is the one returned.
func PublishSettled(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	for {
		ack, err := js.PublishMsg(ctx, msg, opts...)
		if !DuplicateInProcess(err) {
			return ack, err
		}
		if err := service.Sleep(ctx, inProcessRetry); err != nil {
			return nil, err
		}
	}
}

// RepublishAfter reports when an asynchronous publish refused as in
// process should be sent again: after inProcessRetry, if that is before
// deadline.
func RepublishAfter(err error, deadline time.Time) (time.Duration, bool) {
	if !DuplicateInProcess(err) || time.Until(deadline) <= inProcessRetry {
		return 0, false
	}
	return inProcessRetry, true
}
