package join

import (
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		role   hinscorev1.Role
		status hinscorev1.Status
		code   string
		ttf    int64
		late   bool
		want   string
	}{
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 1000, false, "fulfilled"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 60000, false, "fulfilled"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 60001, false, "fulfilled_late"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 1000, true, "fulfilled_late"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_PARTIAL, "", 1000, false, "partial"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_NOT_FOUND, "", 1000, false, "not_found"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "171.204", 1000, false, "refused_exception"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "urn:hinscore:ib-exception|171.403", 1000, false, "refused_exception"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "171.999", 1000, false, "refused_unjustified"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "", 1000, false, "refused_unjustified"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "redirect-portal", 1000, false, "redirected"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REDIRECTED, "", 1000, false, "redirected"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "", 1000, false, "error_transient"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_ERROR_PERMANENT, "", 1000, false, "error_permanent"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_UNSPECIFIED, "", 1000, false, "error_permanent"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_CANCELLED, "", 1000, false, "cancelled"},
		{hinscorev1.Role_ROLE_CANCEL, hinscorev1.Status_STATUS_UNSPECIFIED, "", 1000, false, "cancelled"},
	}
	for _, tc := range cases {
		e := &hinscorev1.ExchangeEvent{Role: tc.role, Status: tc.status, ExceptionCode: tc.code}
		if got := outcomeclass.Name(classify(e, tc.ttf, 60000, tc.late)); got != tc.want {
			t.Errorf("classify(%v %v %q ttf=%d late=%v) = %s, want %s", tc.role, tc.status, tc.code, tc.ttf, tc.late, got, tc.want)
		}
	}
}
