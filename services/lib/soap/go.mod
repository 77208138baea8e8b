module github.com/hinscore/hinscore/services/lib/soap

go 1.26.0

require github.com/hinscore/hinscore/services/lib/atna v0.0.0-00010101000000-000000000000

replace github.com/hinscore/hinscore/services/lib/atna => ../atna

replace github.com/hinscore/hinscore/services/lib/domain => ../domain
