module github.com/hinscore/hinscore/services/hinscore

go 1.26.0
