module github.com/hinscore/hinscore/services/chstore

go 1.26.0
