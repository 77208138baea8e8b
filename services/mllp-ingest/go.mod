module github.com/hinscore/hinscore/services/mllp-ingest

go 1.26.0
