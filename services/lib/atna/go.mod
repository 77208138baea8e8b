module github.com/hinscore/hinscore/services/lib/atna

go 1.26.0

require github.com/hinscore/hinscore/services/lib/domain v0.0.0

replace github.com/hinscore/hinscore/services/lib/domain => ../domain
