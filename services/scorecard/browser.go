package scorecard

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ScreenshotSize is the window Screenshot renders into: wide enough for the
// tables, tall enough for the headline and the first charts.
const ScreenshotSize = "1100,2200"

// Screenshot opens an HTML file in headless Chromium and writes a PNG of
// it to pngPath. chromium is the browser binary ("" = chromium from PATH).
// It returns every console message the page produced (uncaught errors,
// failed loads, console.* calls): the scorecard pages have no script and no
// external asset, so any message is a defect. The browser gets a fresh
// profile directory, removed afterwards, and no network beyond the file.
func Screenshot(ctx context.Context, chromium, htmlPath, pngPath string) ([]string, error) {
	if chromium == "" {
		p, err := exec.LookPath("chromium")
		if err != nil {
			return nil, fmt.Errorf("scorecard.Screenshot: %w", err)
		}
		chromium = p
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Screenshot: %w", err)
	}
	png, err := filepath.Abs(pngPath)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Screenshot: %w", err)
	}
	profile, err := os.MkdirTemp("", "scorecard-chromium-")
	if err != nil {
		return nil, fmt.Errorf("scorecard.Screenshot: %w", err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+profile,
		// Console messages are logged at verbosity 1 as "INFO:CONSOLE".
		"--enable-logging=stderr", "--v=1",
		"--window-size="+ScreenshotSize, "--screenshot="+png, "file://"+abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scorecard.Screenshot: %s: %w: %s", chromium, err, lastLines(stderr.String(), 5))
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		return nil, fmt.Errorf("scorecard.Screenshot: no screenshot written (%v): %s", err, lastLines(stderr.String(), 5))
	}
	var console []string
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	return console, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
