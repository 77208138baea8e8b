package join

import (
	"strings"

	"github.com/hinscore/hinscore/services/lib/domain/exception"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// classify turns the deciding event into an outcome class. late is set when
// the answer came after the chain was already declared unanswered: such an
// answer can never count as fulfilled in time.
func classify(decider *hinscorev1.ExchangeEvent, ttf, sla int64, late bool) hinscorev1.OutcomeClass {
	return classifyParts(decider.GetRole(), decider.GetStatus(), decider.GetExceptionCode(), ttf, sla, late)
}

// classifyParts is classify on the fields a chain keeps of its decider.
func classifyParts(role hinscorev1.Role, status hinscorev1.Status, exceptionCode string, ttf, sla int64, late bool) hinscorev1.OutcomeClass {
	if role == hinscorev1.Role_ROLE_CANCEL {
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_CANCELLED
	}
	code := exception.Bare(exceptionCode)
	if strings.HasPrefix(code, exception.RedirectPrefix) {
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED
	}
	switch status {
	case hinscorev1.Status_STATUS_OK:
		if late || ttf > sla {
			return hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED_LATE
		}
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED
	case hinscorev1.Status_STATUS_PARTIAL:
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_PARTIAL
	case hinscorev1.Status_STATUS_NOT_FOUND:
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_NOT_FOUND
	case hinscorev1.Status_STATUS_REFUSED:
		if exception.IsException(code) {
			return hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION
		}
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_UNJUSTIFIED
	case hinscorev1.Status_STATUS_REDIRECTED:
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_REDIRECTED
	case hinscorev1.Status_STATUS_ERROR_TRANSIENT:
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_TRANSIENT
	case hinscorev1.Status_STATUS_CANCELLED:
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_CANCELLED
	default:
		// ERROR_PERMANENT, and a final answer whose status the ingest could
		// not map: the responder sent something that is not an answer.
		return hinscorev1.OutcomeClass_OUTCOME_CLASS_ERROR_PERMANENT
	}
}
