package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// chromiumPath returns HINSCORE_TEST_CHROMIUM; without it the test fails
// under make test or CI (testenv) and is skipped otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	return testenv.Getenv(t, "HINSCORE_TEST_CHROMIUM", "scripts/chromium.sh installs chromium and prints its path")
}

// testBrowser logs in through the form, opens the offenders list, clicks
// (a real mouse click at the link's position) the first chain link, checks
// the chain timeline, follows the journey link, and fails on any console
// error or uncaught exception along the way.
func testBrowser(t *testing.T, f *fixture) {
	bin := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBrowser(t, ctx, bin)

	b.navigate(t, f.base+"/ui/login")
	b.eval(t, fmt.Sprintf(`document.getElementById("token").value = %q; document.querySelector("form").submit(); true`, testTokens["investigator"]))
	b.waitLoad(t)
	if p := b.evalString(t, `location.pathname`); p != "/ui/offenders" {
		t.Fatalf("after login: %s", p)
	}
	if n := b.evalString(t, `String(document.querySelectorAll("#offenders tr").length)`); n == "0" || n == "1" {
		t.Fatalf("offenders table has %s rows", n)
	}
	href := b.evalString(t, `document.querySelector("a.chain").getAttribute("href")`)
	b.click(t, `a.chain`)
	b.waitLoad(t)
	if p := b.evalString(t, `location.pathname`); p != href || !strings.HasPrefix(p, "/ui/chains/") {
		t.Fatalf("click on %s reached %s", href, p)
	}
	if h := b.evalString(t, `document.querySelector("h1").textContent`); !strings.HasPrefix(h, "Chain ") {
		t.Errorf("chain page heading %q", h)
	}
	if n := b.evalString(t, `String(document.querySelectorAll("#timeline > div").length)`); n == "0" {
		t.Error("empty timeline")
	}
	// Every simulated request names its patient: the journey link is there.
	if b.evalString(t, `String(!!document.getElementById("journey"))`) != "true" {
		t.Fatal("the chain page has no journey link")
	}
	b.click(t, `#journey`)
	b.waitLoad(t)
	p := b.evalString(t, `location.pathname`)
	token, ok := strings.CutPrefix(p, "/ui/patients/")
	if !ok || token == "" {
		t.Fatalf("the journey link reached %s", p)
	}
	if n := b.evalString(t, `String(document.querySelectorAll("#requests tr").length)`); n == "0" || n == "1" {
		t.Errorf("journey table has %s rows", n)
	}
	// The page's verdict is the API's for the same patient.
	var j struct {
		Runaround bool `json:"runaround"`
	}
	f.getJSON(t, "investigator", "/v1/patients/"+token+"/journey", nil, &j)
	want := "No runaround detected"
	if j.Runaround {
		want = "Runaround detected"
	}
	if v := b.evalString(t, `document.getElementById("verdict").textContent`); !strings.HasPrefix(v, want+" ") {
		t.Errorf("journey verdict %q, the API says runaround=%v", v, j.Runaround)
	}
	b.navigate(t, f.base+"/ui/offenders?granularity=day")
	// Log out with the page's button (its form carries the session's CSRF
	// token): the login is gone, the next view goes back to the form.
	b.click(t, `#logout`)
	b.waitLoad(t)
	if p := b.evalString(t, `location.pathname`); p != "/ui/login" {
		t.Errorf("after logout: %s, want /ui/login", p)
	}
	b.navigate(t, f.base+"/ui/offenders")
	if p := b.evalString(t, `location.pathname`); p != "/ui/login" {
		t.Errorf("a view after logout reached %s, want /ui/login", p)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}

type browser struct {
	ws     *wsConn
	mu     sync.Mutex
	nextID int
	waits  map[int]chan json.RawMessage
	events chan string
	errs   []string
}

func startBrowser(t *testing.T, ctx context.Context, bin string) *browser {
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+dir,
		"--window-size=1280,900", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var port string
	for deadline := time.Now().Add(20 * time.Second); ; {
		data, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort"))
		if err == nil && strings.Contains(string(data), "\n") {
			port = strings.SplitN(string(data), "\n", 2)[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromium wrote no DevToolsActivePort")
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	err = json.NewDecoder(resp.Body).Decode(&targets)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var wsURL string
	for _, tg := range targets {
		if tg.Type == "page" {
			wsURL = tg.WebSocketDebuggerURL
			break
		}
	}
	if wsURL == "" {
		t.Fatalf("no page target: %+v", targets)
	}
	ws, err := dialWS(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.close() })
	b := &browser{ws: ws, waits: map[int]chan json.RawMessage{}, events: make(chan string, 64)}
	go b.read()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		b.call(t, m, nil)
	}
	return b
}

func (b *browser) read() {
	for {
		data, err := b.ws.read()
		if err != nil {
			return
		}
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		b.mu.Lock()
		switch {
		case msg.ID != 0:
			if ch := b.waits[msg.ID]; ch != nil {
				if msg.Error != nil {
					ch <- json.RawMessage(`{"__error":` + string(msg.Error) + `}`)
				} else {
					ch <- msg.Result
				}
				delete(b.waits, msg.ID)
			}
		case msg.Method == "Runtime.exceptionThrown":
			b.errs = append(b.errs, "exception: "+string(msg.Params))
		case msg.Method == "Runtime.consoleAPICalled" && strings.Contains(string(msg.Params), `"type":"error"`):
			b.errs = append(b.errs, "console: "+string(msg.Params))
		case msg.Method == "Log.entryAdded" && strings.Contains(string(msg.Params), `"level":"error"`):
			b.errs = append(b.errs, "log: "+string(msg.Params))
		case msg.Method == "Page.loadEventFired":
			select {
			case b.events <- msg.Method:
			default:
			}
		}
		b.mu.Unlock()
	}
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan json.RawMessage, 1)
	b.waits[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err := b.ws.write(msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case res := <-ch:
		if strings.HasPrefix(string(res), `{"__error"`) {
			t.Fatalf("%s: %s", method, res)
		}
		return res
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no answer", method)
	}
	return nil
}

func (b *browser) drainLoads() {
	for {
		select {
		case <-b.events:
		default:
			return
		}
	}
}

func (b *browser) waitLoad(t *testing.T) {
	t.Helper()
	select {
	case <-b.events:
	case <-time.After(15 * time.Second):
		t.Fatal("page did not load")
	}
}

func (b *browser) navigate(t *testing.T, u string) {
	t.Helper()
	b.drainLoads()
	b.call(t, "Page.navigate", map[string]any{"url": u})
	b.waitLoad(t)
}

func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	b.drainLoads()
	res := b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.ExceptionDetails != nil {
		t.Fatalf("evaluate %s: %v %s", expr, err, r.ExceptionDetails)
	}
	return r.Result.Value
}

func (b *browser) evalString(t *testing.T, expr string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(b.eval(t, expr), &s); err != nil {
		t.Fatalf("evaluate %s: not a string", expr)
	}
	return s
}

// click presses and releases the left mouse button at the centre of the
// first element matching selector, as a user would.
func (b *browser) click(t *testing.T, selector string) {
	t.Helper()
	var pos struct{ X, Y float64 }
	raw := b.eval(t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView(); const r = e.getBoundingClientRect(); return {x: r.x + r.width/2, y: r.y + r.height/2}; })()`, selector))
	if err := json.Unmarshal(raw, &pos); err != nil {
		t.Fatal(err)
	}
	b.call(t, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": pos.X, "y": pos.Y})
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		b.call(t, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": pos.X, "y": pos.Y, "button": "left", "clickCount": 1})
	}
}

// wsConn is the smallest websocket client the DevTools protocol needs:
// text frames, client-masked, no extensions, no Origin header.
type wsConn struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
}

func dialWS(raw string) (*wsConn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &wsConn{conn: conn, r: r}, nil
}

func (c *wsConn) write(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	hdr := []byte{0x81} // FIN + text
	n := len(payload)
	switch {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, n)
	for i := range payload {
		masked[i] = payload[i] ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, masked...))
	return err
}

// read returns the next whole text message (fragments joined); control
// frames other than close are skipped.
func (c *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		op, n := h[0]&0x0f, uint64(h[1]&0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("websocket frame of %d bytes", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c.r, data); err != nil {
			return nil, err
		}
		if op == 0x8 {
			return nil, io.EOF
		}
		if op == 0x9 || op == 0xA {
			continue
		}
		msg = append(msg, data...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}

func (c *wsConn) close() { _ = c.conn.Close() }
