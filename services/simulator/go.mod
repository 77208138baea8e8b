module github.com/hinscore/hinscore/services/simulator

go 1.26.0
