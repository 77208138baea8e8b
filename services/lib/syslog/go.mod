module github.com/hinscore/hinscore/services/lib/syslog

go 1.26.0
