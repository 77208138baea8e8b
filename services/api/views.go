package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

//go:embed templates/*.html
var templateFS embed.FS

// views renders the server-side HTML pages: no script, one small inline
// style sheet, links between offenders, chains and journeys.
type views struct {
	pages map[string]*template.Template
}

func newViews() (*views, error) {
	funcs := template.FuncMap{
		"pct":    func(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) },
		"dur":    func(ms uint64) string { return (time.Duration(ms) * time.Millisecond).String() },
		"msTime": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") },
		"offset": func(from, to int64) string { return (time.Duration(to-from) * time.Millisecond).String() },
		"deref":  func(b *bool) bool { return b != nil && *b },
		// csrf is the page's CSRF token, set per page (render).
		"csrf": func() string { return "" },
		// The lines offenders may be ranked on: the required-response
		// purposes together, then each purpose.
		"offenderPurposes": func() []string {
			out := []string{RequiredResponseLine}
			for _, p := range purpose.All {
				out = append(out, string(p))
			}
			return out
		},
		"deref64": func(v *uint64) uint64 {
			if v == nil {
				return 0
			}
			return *v
		},
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range []string{"offenders", "chain", "journey", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("api.newViews %s: %w", name, err)
		}
		v.pages[name] = t
	}
	login, err := template.New("login").Funcs(funcs).ParseFS(templateFS, "templates/login.html")
	if err != nil {
		return nil, fmt.Errorf("api.newViews login: %w", err)
	}
	v.pages["login"] = login
	return v, nil
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 rather than half a page. csrf is the token the page's forms
// carry (its session's, or the login form's). The parsed pages are never
// executed themselves: each render executes a clone given the token.
func (v *views) render(w http.ResponseWriter, status int, name, file, csrf string, data any) error {
	t, err := v.pages[name].Clone()
	if err != nil {
		return fmt.Errorf("api.views %s: %w", name, err)
	}
	t.Funcs(template.FuncMap{"csrf": func() string { return csrf }})
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, file, data); err != nil {
		return fmt.Errorf("api.views %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}

func (v *views) error(w http.ResponseWriter, status int, csrf, msg string) {
	_ = v.render(w, status, "error", "error.html", csrf, struct {
		Status  int
		Message string
	}{status, msg})
}

// page renders a view of an authenticated request, its forms carrying the
// session's CSRF token.
func (s *Server) page(w http.ResponseWriter, r *http.Request, name string, data any) error {
	return s.views.render(w, http.StatusOK, name, name+".html", csrfOf(r), data)
}

func (s *Server) handleOffendersPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	res, err := s.offenders(r, p)
	if err != nil {
		return err
	}
	return s.page(w, r, "offenders", res)
}

func (s *Server) handleChainPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	v, err := s.chain(r.Context(), r, p)
	if err != nil {
		return err
	}
	return s.page(w, r, "chain", v)
}

func (s *Server) handleJourneyPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	j, err := s.journey(r.Context(), r, p)
	if err != nil {
		return err
	}
	return s.page(w, r, "journey", j)
}
