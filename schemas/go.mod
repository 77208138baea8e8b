module github.com/hinscore/hinscore/schemas

go 1.26.0
