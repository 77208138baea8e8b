package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// The web views' login. The form carries a CSRF token (double submit: a
// cookie of the login path holds the same value), a login is a session in
// the SessionBucket whose random id the session cookie carries, and
// logging out deletes it. Cookies are Secure whenever the public URL is
// https (HINSCORE_API_PUBLIC_URL) or the connection is TLS.

type csrfKey struct{}

// csrfOf is the CSRF token of the request's session ("" for a bearer
// token: it has no forms to protect).
func csrfOf(r *http.Request) string {
	v, _ := r.Context().Value(csrfKey{}).(string)
	return v
}

func withCSRF(r *http.Request, token string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), csrfKey{}, token))
}

// secureCookies reports whether cookies set for r must be Secure: the
// browser reaches the api over https, directly or through a proxy.
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https://")
}

func (s *Server) cookie(r *http.Request, name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies(r)}
}

// loginForm answers the login form with a fresh CSRF token in the form and
// its cookie.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	http.SetCookie(w, s.cookie(r, loginCSRFCookie, token, "/ui/login", 3600))
	_ = s.views.render(w, status, "login", "login.html", token, msg)
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, http.StatusOK, "")
}

// handleLogin checks the form's CSRF token and the API token, and opens a
// session. Failed logins take from the address's failure bucket; an
// address that spent it gets 429 before its token is looked at.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	addr, now := remoteHost(r), s.clock.Now()
	if limited, wait := s.guard.blocked(addr, now); limited {
		s.metrics.authRefused.WithLabelValues("limited").Inc()
		w.Header().Set("Retry-After", retryAfter(wait))
		s.loginForm(w, r, http.StatusTooManyRequests, "Too many failed logins from this address: try again later.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token, formCSRF := r.PostFormValue("token"), r.PostFormValue("csrf")
	if c, err := r.Cookie(loginCSRFCookie); err != nil || !sameToken(formCSRF, c.Value) {
		s.metrics.authRefused.WithLabelValues("csrf").Inc()
		s.loginForm(w, r, http.StatusForbidden, "The login form has expired or was not sent from this site: log in again.")
		return
	}
	hash := HashToken(token)
	if _, ok := s.cfg.Tokens[hash]; token == "" || !ok {
		s.guard.fail(addr, now)
		s.metrics.authRefused.WithLabelValues("bad_login").Inc()
		s.loginForm(w, r, http.StatusUnauthorized, "Unknown token.")
		return
	}
	if s.sessions == nil {
		s.views.error(w, http.StatusServiceUnavailable, "", "logins need NATS (the sessions bucket); use the API with a bearer token")
		return
	}
	id, _, err := s.sessions.create(r.Context(), hash, now)
	if err != nil {
		s.writeError(w, r, true, err)
		return
	}
	http.SetCookie(w, s.cookie(r, loginCSRFCookie, "", "/ui/login", -1))
	http.SetCookie(w, s.cookie(r, sessionCookie, id, "/ui/", int(sessionTTL.Seconds())))
	http.Redirect(w, r, "/ui/offenders", http.StatusSeeOther)
}

// handleLogout deletes the session (on every replica: a copy of the
// cookie no longer works) once the form's CSRF token matches it.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	c, err := r.Cookie(sessionCookie)
	if err == nil && s.sessions != nil {
		sess, err := s.sessions.get(r.Context(), c.Value, s.clock.Now())
		switch {
		case errors.Is(err, errNoSession):
		case err != nil:
			s.writeError(w, r, true, err)
			return
		case !sameToken(r.PostFormValue("csrf"), sess.CSRF):
			s.metrics.authRefused.WithLabelValues("csrf").Inc()
			s.views.error(w, http.StatusForbidden, sess.CSRF, "the logout form was not sent from this site")
			return
		default:
			if err := s.sessions.revoke(r.Context(), c.Value); err != nil {
				s.writeError(w, r, true, err)
				return
			}
		}
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, "", "/ui/", -1))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
