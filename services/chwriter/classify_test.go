package chwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestIsContentError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"driver refused a value", fmt.Errorf("append t.c: %w: %w", errRejectedValue, errors.New("unknown enum")), true},
		{"type mismatch", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}, true},
		{"throwIf check", fmt.Errorf("insert t: %w", &clickhouse.Exception{Code: 395}), true},
		{"unknown table (outage: renamed, dropped)", &clickhouse.Exception{Code: 60}, false},
		{"too many parts", &clickhouse.Exception{Code: 252}, false},
		{"memory limit", &clickhouse.Exception{Code: 241}, false},
		{"readonly", &clickhouse.Exception{Code: 164}, false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"eof", io.EOF, false},
		{"deadline", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		if got := isContentError(tt.err); got != tt.want {
			t.Errorf("%s: isContentError(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
