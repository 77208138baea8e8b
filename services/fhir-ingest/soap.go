package fhiringest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/dlq"
	"github.com/hinscore/hinscore/services/lib/soap"
	soaptoevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
)

// HeaderGatewaySide says which gateway mirrors a SOAP copy: initiating
// (the default) or responding.
const HeaderGatewaySide = "X-Gateway-Side"

// formatSOAP names SOAP copies in RAW subjects and dead letters.
const formatSOAP = "soap"

// Rejection reasons of SOAP copies (label "reason"), beside the shared
// ones (auth, forbidden, too_large, media_type, publish).
const (
	reasonSOAPSyntax      = "soap_syntax"       // not a SOAP envelope, malformed or hostile XML, a broken MTOM package
	reasonSOAPNotExchange = "soap_not_exchange" // an envelope of another transaction
	reasonSide            = "side"              // an X-Gateway-Side other than initiating or responding
)

// gatewaySide reads X-Gateway-Side.
func gatewaySide(r *http.Request) (hinscorev1.Side, bool) {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderGatewaySide))) {
	case "", "initiating":
		return hinscorev1.Side_SIDE_INITIATING, true
	case "responding":
		return hinscorev1.Side_SIDE_RESPONDING, true
	}
	return 0, false
}

// soapMedia says whether a Content-Type is one a SOAP copy comes in.
func soapMedia(contentType string) bool {
	media, err := mediaType(contentType)
	return err == nil && (media == "application/soap+xml" || media == "text/xml" || media == "multipart/related")
}

// serveSOAP takes a copy of one SOAP message of a cross-community
// transaction (POST /soap, the network the token's; POST /soap/{network}
// and POST /fhir/{network}/soap, the network named),
// stores its event and answers 202 once stored; a SOAP 1.2 fault says why
// anything else was not.
func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	start := s.clock.Now()
	network, ok := s.soapNetwork(w, r, start)
	if !ok {
		return
	}
	side, ok := gatewaySide(r)
	if !ok {
		s.m.rejected.WithLabelValues(network, reasonSide).Inc()
		s.replySOAP(w, network, start, http.StatusBadRequest, "Sender", HeaderGatewaySide+" "+strconv.Quote(r.Header.Get(HeaderGatewaySide))+": send initiating or responding")
		return
	}
	if !soapMedia(r.Header.Get("Content-Type")) {
		s.m.rejected.WithLabelValues(network, reasonMediaType).Inc()
		s.replySOAP(w, network, start, http.StatusUnsupportedMediaType, "Sender",
			fmt.Sprintf("Content-Type %q: send application/soap+xml, text/xml or multipart/related (MTOM)", r.Header.Get("Content-Type")))
		return
	}
	data, status, err := s.readSOAP(w, r, network)
	if err != nil {
		s.replySOAP(w, network, start, status, faultCode(status), err.Error())
		return
	}
	ns := s.netOf(network)
	ns.received.Inc()
	ns.bytes.Add(float64(len(data)))
	_, ev, err := ns.soap.Map(soaptoevent.Input{Network: network, Side: side, ContentType: r.Header.Get("Content-Type"),
		Body: data, Ingest: start, MaxBytes: int(s.cfg.MaxBodyBytes)})
	if err != nil {
		s.refuseSOAP(w, r, network, start, data, err)
		return
	}
	dup, err := s.pub.store(r.Context(), network, r.RemoteAddr, formatSOAP, data, ev.EventId, []*hinscorev1.ExchangeEvent{ev})
	if errors.Is(err, ErrConflict) {
		s.m.rejected.WithLabelValues(network, reasonConflict).Inc()
		if s.deadLetterFormat(r.Context(), network, r.RemoteAddr, formatSOAP, reasonConflict, err.Error(), data) != nil {
			s.replySOAP(w, network, start, http.StatusServiceUnavailable, "Receiver", "not stored: send it again")
			return
		}
		s.replySOAP(w, network, start, http.StatusConflict, "Sender", err.Error())
		return
	}
	if err != nil {
		s.m.rejected.WithLabelValues(network, reasonPublish).Inc()
		s.log.Warn().Err(err).Str("network", network).Msg("publish failed: replying 503")
		s.replySOAP(w, network, start, http.StatusServiceUnavailable, "Receiver", "not stored: send it again")
		return
	}
	ns.accepted.Inc()
	ns.events.Inc()
	if dup {
		ns.duplicate.Inc()
	}
	s.m.requests.WithLabelValues(network, strconv.Itoa(http.StatusAccepted)).Inc()
	ns.latency.Observe(s.clock.Now().Sub(start).Seconds())
	w.WriteHeader(http.StatusAccepted)
}

// importRefused puts a refused copy in the DLQ with its reason and returns
// ImportSOAP's error.
func importRefused(ctx context.Context, js jetstream.JetStream, network, reason string, data []byte, err error) error {
	dctx, cancel := context.WithTimeout(ctx, defaultPublishTimeout)
	defer cancel()
	if derr := dlq.Publish(dctx, js, dlq.DeadLetter{Stage: stageFHIRIngest, Network: network, Format: formatSOAP,
		Reason: reason + ": " + err.Error(), Data: data}); derr != nil {
		return fmt.Errorf("fhiringest.ImportSOAP: %w (and its dead letter: %v)", err, derr)
	}
	return fmt.Errorf("fhiringest.ImportSOAP: %w (in the DLQ)", err)
}

// soapNetwork is the network a copy belongs to: the token's, which must
// be the URL's when it names one.
func (s *Server) soapNetwork(w http.ResponseWriter, r *http.Request, start time.Time) (string, bool) {
	owner, ok := s.tokenOwner(r)
	if !ok {
		s.m.rejected.WithLabelValues("-", reasonAuth).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="hinscore", error="invalid_token"`)
		s.replySOAP(w, "-", start, http.StatusUnauthorized, "Sender", "missing or unknown bearer token")
		return "", false
	}
	if network := r.PathValue("network"); network != "" && network != owner {
		s.refuseOtherNetwork(r, network, owner)
		s.replySOAP(w, "-", start, http.StatusForbidden, "Sender", "this token does not belong to network "+strconv.Quote(network))
		return "", false
	}
	return owner, true
}

// readSOAP reads the body, bounded by MaxBodyBytes; a body over it is
// dead-lettered without its bytes.
func (s *Server) readSOAP(w http.ResponseWriter, r *http.Request, network string) ([]byte, int, error) {
	body, err := s.bodyReader(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.m.rejected.WithLabelValues(network, reasonMediaType).Inc()
		return nil, http.StatusUnsupportedMediaType, err
	}
	defer body.Close()
	size := r.ContentLength
	if r.Header.Get("Content-Encoding") != "" {
		size = -1
	}
	data, err := readAll(body, s.cfg.MaxBodyBytes, size)
	switch {
	case errors.Is(err, errTooLarge):
		s.m.rejected.WithLabelValues(network, reasonTooLarge).Inc()
		if s.deadLetterFormat(r.Context(), network, r.RemoteAddr, formatSOAP, reasonTooLarge, err.Error(), nil) != nil {
			return nil, http.StatusServiceUnavailable, errors.New("not stored: send it again")
		}
		return nil, http.StatusRequestEntityTooLarge, err
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	return data, 0, nil
}

// refuseSOAP dead-letters a copy that does not map and answers 400 (not
// a readable envelope), 413 (an envelope over the limit) or 422 (an
// envelope of no cross-community transaction).
func (s *Server) refuseSOAP(w http.ResponseWriter, r *http.Request, network string, start time.Time, data []byte, err error) {
	status, reason := http.StatusBadRequest, reasonSOAPSyntax
	switch {
	case errors.Is(err, soap.ErrNotExchange):
		status, reason = http.StatusUnprocessableEntity, reasonSOAPNotExchange
	case errors.Is(err, soap.ErrTooLarge):
		status, reason = http.StatusRequestEntityTooLarge, reasonTooLarge
	}
	s.m.rejected.WithLabelValues(network, reason).Inc()
	if s.deadLetterFormat(r.Context(), network, r.RemoteAddr, formatSOAP, reason, err.Error(), data) != nil {
		s.replySOAP(w, network, start, http.StatusServiceUnavailable, "Receiver", "not stored: send it again")
		return
	}
	s.replySOAP(w, network, start, status, "Sender", err.Error())
}

func faultCode(status int) string {
	if status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// replySOAP records the request's metrics and answers with a SOAP 1.2
// fault: code Sender or Receiver, the reason in English.
func (s *Server) replySOAP(w http.ResponseWriter, label string, start time.Time, status int, code, reason string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	s.m.requests.WithLabelValues(label, strconv.Itoa(status)).Inc()
	if label != "-" {
		s.m.latency.WithLabelValues(label).Observe(s.clock.Now().Sub(start).Seconds())
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(faultBody(code, reason))
}

// faultBody is a SOAP 1.2 envelope holding one fault.
func faultBody(code, reason string) []byte {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(reason))
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<env:Envelope xmlns:env="` + soap.NamespaceSOAP12 + `"><env:Body><env:Fault>` +
		`<env:Code><env:Value>env:` + code + `</env:Value></env:Code>` +
		`<env:Reason><env:Text xml:lang="en">` + esc.String() + `</env:Text></env:Reason>` +
		`</env:Fault></env:Body></env:Envelope>`)
}

// ImportSOAP stores one captured SOAP copy (a file holding an envelope, or
// an MTOM package with or without its Content-Type header block) for
// network as POST /soap would: mapped by lib/soap/toevent, its event
// published with the bytes sealed in it. A copy that does not map goes to
// the DLQ with its reason and its error is returned. It returns the event
// and whether JetStream already held it (a re-import stores nothing twice).
func ImportSOAP(ctx context.Context, js jetstream.JetStream, cfg Config, network string, side hinscorev1.Side, data []byte) (*hinscorev1.ExchangeEvent, bool, error) {
	if err := bus.ValidNetwork(network); err != nil {
		return nil, false, fmt.Errorf("fhiringest.ImportSOAP: %w", err)
	}
	if cfg.PartitionCount < 1 || len(cfg.PatientKey) < 16 || cfg.PatientKeyID == "" || cfg.MaxBodyBytes < 1 {
		return nil, false, fmt.Errorf("fhiringest.ImportSOAP: config needs Partitions, PatientKey (16+ bytes), PatientKeyID and MaxBodyBytes")
	}
	pub := &publisher{js: js, keys: cfg.RawKeys, partitions: cfg.PartitionCount, timeout: defaultPublishTimeout}
	_, ev, err := cfg.soapMapper(network, soaptoevent.NewMapper(cfg.PatientKey, cfg.PatientKeyID)).Map(soaptoevent.Input{
		Network: network, Side: side, Body: data, Ingest: time.Now().UTC(), MaxBytes: int(cfg.MaxBodyBytes)})
	if err != nil {
		reason := reasonSOAPSyntax
		if errors.Is(err, soap.ErrNotExchange) {
			reason = reasonSOAPNotExchange
		}
		return nil, false, importRefused(ctx, js, network, reason, data, err)
	}
	dup, err := pub.store(ctx, network, "", formatSOAP, data, ev.EventId, []*hinscorev1.ExchangeEvent{ev})
	if errors.Is(err, ErrConflict) {
		return nil, false, importRefused(ctx, js, network, reasonConflict, data, err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("fhiringest.ImportSOAP: %w", err)
	}
	return ev, dup, nil
}
