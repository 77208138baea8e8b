package chstore

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Version is a ClickHouse server's major.minor release.
type Version struct {
	Major, Minor int
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Features says which features newer than 18.16 (the oldest supported server)
// a server has. The schema and every shipped query run without them; code
// that wants one asks here first and keeps an 18.16 path.
type Features struct {
	Version Version
	// LowCardinality(String) columns (19.0).
	LowCardinality bool
	// INDEX ... TYPE minmax/set/bloom_filter data-skipping indexes without an
	// experimental setting (19.17 for bloom_filter).
	SkippingIndexes bool
	// DateTime64 (20.1).
	DateTime64 bool
	// Window functions (21.9 by default).
	WindowFunctions bool
}

// FeaturesOf lists the features of a server version.
func FeaturesOf(v Version) Features {
	return Features{
		Version:         v,
		LowCardinality:  v.AtLeast(19, 0),
		SkippingIndexes: v.AtLeast(19, 17),
		DateTime64:      v.AtLeast(20, 1),
		WindowFunctions: v.AtLeast(21, 9),
	}
}

// ServerFeatures asks the server for its version and returns its features.
func ServerFeatures(ctx context.Context, conn driver.Conn) (Features, error) {
	major, minor, err := ServerVersion(ctx, conn)
	if err != nil {
		return Features{}, fmt.Errorf("chstore.ServerFeatures: %w", err)
	}
	return FeaturesOf(Version{Major: major, Minor: minor}), nil
}
