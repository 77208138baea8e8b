package simulator

import (
	"fmt"
	"strconv"
	"time"
)

// atnaPRI is authpriv (10) × 8 + notice (5), the priority ATNA actors use.
const atnaPRI = 10*8 + 5

// syslogMessage wraps an AuditMessage in the gateway's syslog form:
// RFC 5424 (MSGID "IHE+RFC-3881", no structured data, a BOM before the
// XML) or the older BSD form of RFC 3164 (second precision, no year).
func syslogMessage(g Gateway, at time.Time, pid int, body []byte) []byte {
	var hdr string
	if g.Syslog == SyslogBSD {
		hdr = fmt.Sprintf("<%d>%s %s IHE_XCA_GW[%d]: ", atnaPRI, at.UTC().Format(time.Stamp), g.Host, pid)
	} else {
		hdr = fmt.Sprintf("<%d>1 %s %s IHE_XCA_GW %d IHE+RFC-3881 - \ufeff", atnaPRI, at.UTC().Format(auditTime), g.Host, pid)
	}
	return append([]byte(hdr), body...)
}

// appendSyslogFrame appends msg as one RFC 5425 octet-counted frame:
// MSG-LEN SP SYSLOG-MSG, nothing between frames.
func appendSyslogFrame(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
