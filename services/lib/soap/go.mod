module github.com/hinscore/hinscore/services/lib/soap

go 1.26.0

require (
	github.com/hinscore/hinscore/proto v0.0.0-00010101000000-000000000000
	github.com/hinscore/hinscore/services/lib/atna v0.0.0-00010101000000-000000000000
	github.com/hinscore/hinscore/services/lib/domain v0.0.0
)

require (
	github.com/google/uuid v1.6.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/hinscore/hinscore/services/lib/atna => ../atna

replace github.com/hinscore/hinscore/services/lib/domain => ../domain

replace github.com/hinscore/hinscore/proto => ../../../proto
