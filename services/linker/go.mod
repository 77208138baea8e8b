module github.com/hinscore/hinscore/services/linker

go 1.26.0
