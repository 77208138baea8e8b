package chwriter

import (
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// errRejectedValue marks a value the driver refused to encode for its column:
// a property of the row, not of the server's health.
var errRejectedValue = errors.New("value rejected by the column")

// contentCodes are the ClickHouse error codes that blame the data of an
// insert rather than the server: retrying the same rows can never succeed,
// so the writer isolates the rows that cause them. Every other error (a
// connection refused, a timeout, a missing table, too many parts, memory)
// is treated as an outage and retried for as long as it lasts, because
// dead-lettering good rows during an outage would lose them from the tables.
var contentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	190: "SIZES_OF_ARRAYS_DOESNT_MATCH",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
	// throwIf in a materialized view or (on newer servers) a table
	// CONSTRAINT: a check an operator put on the data.
	395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
	469: "VIOLATED_CONSTRAINT",
}

// isContentError reports whether err says the rows themselves are bad.
func isContentError(err error) bool {
	if errors.Is(err, errRejectedValue) {
		return true
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := contentCodes[ex.Code]
		return ok
	}
	return false
}
