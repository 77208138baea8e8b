package atnaingest

import (
	"time"

	"github.com/hinscore/hinscore/proto/classtable"
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// auditMapping reads an AuditMessage (lib/atna) and maps it
// (lib/atna/toevent, the one mapping of audit records): the event ids
// derive from the network and the AuditMessage's bytes, so a record sent
// again, over either transport, is stored once.
type auditMapping struct {
	maxBytes     int
	patients     *patient.Tokenizer
	patientKeyID string
	table        *classtable.Table
}

// Mapping is the mapping the listener uses: the patient key and the
// built-in classification table.
func (c Config) Mapping() Mapping {
	return auditMapping{maxBytes: c.MaxFrameBytes, patients: patient.NewTokenizer(c.PatientKey),
		patientKeyID: c.PatientKeyID, table: toevent.DefaultTable()}
}

// Map reads and maps one AuditMessage.
func (m auditMapping) Map(network string, body []byte, received time.Time) ([]*hinscorev1.ExchangeEvent, error) {
	a, err := atna.Parse(body, m.maxBytes)
	if err != nil {
		return nil, err
	}
	return toevent.Map(a, toevent.Input{Network: network, Raw: body, Ingest: received,
		Patients: m.patients, PatientKeyID: m.patientKeyID, Table: m.table})
}
