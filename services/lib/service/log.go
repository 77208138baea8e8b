package service

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// NewLogger returns a JSON logger for the named service, or a readable
// console logger when w is a terminal, at HINSCORE_LOG_LEVEL (info when
// unset or unknown).
func NewLogger(name string, w io.Writer) zerolog.Logger {
	return newLogger(name, w, os.Getenv("HINSCORE_LOG_LEVEL"))
}

func newLogger(name string, w io.Writer, levelName string) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(levelName); err == nil && l != zerolog.NoLevel {
		level = l
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", name).Logger()
}
