module github.com/hinscore/hinscore/services/hl7v2

go 1.26.0
