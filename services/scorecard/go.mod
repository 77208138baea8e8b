module github.com/hinscore/hinscore/services/scorecard

go 1.26.0
