module github.com/hinscore/hinscore/services/chwriter

go 1.26.0
