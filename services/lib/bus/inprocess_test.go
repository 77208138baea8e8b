package bus

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestDuplicateInProcess(t *testing.T) {
	inProcess := fmt.Errorf("publish: %w", &jetstream.APIError{Code: 409, ErrorCode: ErrCodeDuplicateInProcess, Description: "duplicate message id is in process"})
	if !DuplicateInProcess(inProcess) {
		t.Error("a wrapped 10158 is the in-process answer")
	}
	for _, err := range []error{nil, errors.New("timeout"), &jetstream.APIError{Code: 503, ErrorCode: 10077}} {
		if DuplicateInProcess(err) {
			t.Errorf("%v is not the in-process answer", err)
		}
	}
	if wait, again := RepublishAfter(inProcess, time.Now().Add(time.Second)); !again || wait != inProcessRetry {
		t.Errorf("RepublishAfter before the deadline = %v %v, want %v true", wait, again, inProcessRetry)
	}
	if _, again := RepublishAfter(inProcess, time.Now().Add(inProcessRetry/2)); again {
		t.Error("no republish when the deadline comes first")
	}
	if _, again := RepublishAfter(errors.New("timeout"), time.Now().Add(time.Second)); again {
		t.Error("no republish of another failure")
	}
}
