package api

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/text"
)

// EvidenceManifest is manifest.json in an evidence bundle: what it holds,
// with a SHA-256 per file so a case file can show nothing was changed.
type EvidenceManifest struct {
	Chain       string            `json:"chain"`
	Network     string            `json:"network"`
	GeneratedAt string            `json:"generated_at"`
	GeneratedBy string            `json:"generated_by"`
	Reason      string            `json:"reason"`
	Files       map[string]string `json:"files"` // name -> sha256 hex
}

// Classification is classification.json: the class and what decided it.
type Classification struct {
	Outcome       string   `json:"outcome"`
	ExceptionCode string   `json:"exception_code"`
	ReasonCodes   []string `json:"reason_codes"`
	Suspect       bool     `json:"suspect"`
	// The purpose decides whether a refusal or silence breaks a duty to
	// respond (required_response).
	Purpose          string  `json:"purpose"`
	PurposeCode      string  `json:"purpose_code"`
	RequiredResponse bool    `json:"required_response"`
	Why              Why     `json:"why"`
	SLA              SLA     `json:"sla"`
	TTFMs            *uint64 `json:"ttf_ms"`
	OutcomeVersion   uint64  `json:"outcome_version"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func rawExt(format string) string {
	switch format {
	case "hl7v2":
		return ".hl7"
	case "fhir":
		return ".json"
	case "atna", "soap": // an AuditMessage (in its syslog message) or a SOAP envelope
		return ".xml"
	}
	return ".txt"
}

// classificationOf is what decided a chain's class (classification.json).
func classificationOf(v ChainView) Classification {
	return Classification{Outcome: v.Class, ExceptionCode: v.ExceptionCode, ReasonCodes: v.ReasonCodes, Suspect: v.Suspect,
		Purpose: v.Purpose, PurposeCode: v.PurposeCode, RequiredResponse: v.RequiredResponse,
		Why: v.Why, SLA: v.SLA, TTFMs: v.TTFMs, OutcomeVersion: v.Version}
}

// rawName is the file name of a chain's i-th original message.
func rawName(i int, msg RawMessage) string {
	return fmt.Sprintf("%02d-%s-%s%s", i+1, msg.Role, unsafeName.ReplaceAllString(text.Truncate(msg.MessageID, 64), "_"), rawExt(msg.Format))
}

// rawIndex lists a chain's original messages without their bytes.
func rawIndex(msgs []RawMessage) []RawMessage {
	index := make([]RawMessage, len(msgs))
	for i, msg := range msgs {
		index[i] = msg
		index[i].Data = ""
	}
	return index
}

// evidenceZip builds the case-file bundle: chain.json, classification.json,
// raw/index.json with one file per original message, and manifest.json.
func evidenceZip(v ChainView, msgs []RawMessage, who, reason string, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	m := EvidenceManifest{Chain: v.ID, Network: v.Network, GeneratedAt: now.UTC().Format(time.RFC3339), GeneratedBy: who, Reason: reason, Files: map[string]string{}}
	add := func(name string, data []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now.UTC()})
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		m.Files[name] = hex.EncodeToString(sum[:])
		return nil
	}
	addJSON := func(name string, x any) error {
		data, err := json.MarshalIndent(x, "", "  ")
		if err != nil {
			return err
		}
		return add(name, append(data, '\n'))
	}
	err := addJSON("chain.json", v)
	if err == nil {
		err = addJSON("classification.json", classificationOf(v))
	}
	for i, msg := range msgs {
		if err != nil || msg.Status != "ok" {
			continue
		}
		err = add("raw/"+rawName(i, msg), []byte(msg.Data))
	}
	if err == nil {
		err = addJSON("raw/index.json", rawIndex(msgs))
	}
	if err == nil {
		err = addJSON("manifest.json", m)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("api.evidenceZip: %w", err)
	}
	return buf.Bytes(), nil
}
