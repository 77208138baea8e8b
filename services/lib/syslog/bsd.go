package syslog

import (
	"bytes"
	"time"
)

// bsdStampLen is the length of "Mmm dd hh:mm:ss".
const bsdStampLen = 15

// bsdAhead is how far after the reference time a BSD timestamp may lie:
// clock skew and the widest gap between time zones, with room to spare.
const bsdAhead = 7 * 24 * time.Hour

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// bsd reads what follows the PRI of an RFC 3164 message:
// "Mmm dd hh:mm:ss HOST TAG[PID]: MSG".
func (p *parser) bsd(m *Message, ref time.Time) error {
	m.Format = BSD
	t, err := p.bsdStamp(ref)
	if err != nil {
		return err
	}
	m.Timestamp = t
	if m.Hostname, _, err = p.token("HOSTNAME", maxHostname); err != nil {
		return err
	}
	d, start := p.data, p.pos
	for p.pos < len(d) && d[p.pos] != '[' && d[p.pos] != ':' && d[p.pos] != ' ' {
		if b := d[p.pos]; b < 33 || b > 126 {
			return p.fail("TAG", p.pos, "byte %#02x is not printable ASCII", b)
		}
		p.pos++
	}
	switch {
	case p.pos == start:
		return p.fail("TAG", start, "empty")
	case p.pos-start > maxAppName:
		return p.fail("TAG", start, "longer than %d bytes", maxAppName)
	}
	m.AppName = string(d[start:p.pos])
	if p.pos < len(d) && d[p.pos] == '[' {
		end := bytes.IndexByte(d[p.pos:], ']')
		if end < 0 {
			return p.fail("PROCID", p.pos, "'[' not closed")
		}
		pid := d[p.pos+1 : p.pos+end]
		if len(pid) == 0 || len(pid) > maxProcID {
			return p.fail("PROCID", p.pos+1, "empty or longer than %d bytes", maxProcID)
		}
		m.ProcID = string(pid)
		p.pos += end + 1
	}
	if p.pos < len(d) && d[p.pos] == ':' {
		p.pos++
	}
	if p.pos < len(d) && d[p.pos] == ' ' {
		p.pos++
	}
	m.Body = bytes.TrimPrefix(d[p.pos:], bom)
	return nil
}

// bsdStamp reads "Mmm dd hh:mm:ss " (the day space- or zero-padded) in
// ref's location, in the latest year that puts it no more than
// bsdAhead after ref: a December message read on 2 January is of the year
// before, one of 1 January read on 31 December (a sender's clock ahead, or
// in a zone east of ref's) of the year after, and a backlog months old of
// its own year.
func (p *parser) bsdStamp(ref time.Time) (time.Time, error) {
	d, at := p.data[p.pos:], p.pos
	if len(d) < bsdStampLen+1 || d[3] != ' ' || d[6] != ' ' || d[9] != ':' || d[12] != ':' || d[15] != ' ' {
		return time.Time{}, p.fail("TIMESTAMP", at, "not \"Mmm dd hh:mm:ss \"")
	}
	month := 0
	for i, name := range months {
		if string(d[:3]) == name {
			month = i + 1
		}
	}
	if month == 0 {
		return time.Time{}, p.fail("TIMESTAMP", at, "month %q", d[:3])
	}
	day, ok1 := twoDigits(d[4], d[5], true)
	hour, ok2 := twoDigits(d[7], d[8], false)
	minute, ok3 := twoDigits(d[10], d[11], false)
	sec, ok4 := twoDigits(d[13], d[14], false)
	if !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, p.fail("TIMESTAMP", at, "%q out of range", d[:bsdStampLen])
	}
	var best time.Time
	for y := ref.Year() - 1; y <= ref.Year()+1; y++ {
		t := time.Date(y, time.Month(month), day, hour, minute, sec, 0, ref.Location())
		if t.Day() != day { // 31 Apr, 29 Feb of a common year
			continue
		}
		if t.Sub(ref) <= bsdAhead {
			best = t
		}
	}
	if best.IsZero() {
		return time.Time{}, p.fail("TIMESTAMP", at, "%q is in none of the years around %d", d[:bsdStampLen], ref.Year())
	}
	p.pos += bsdStampLen + 1
	return best, nil
}

// twoDigits reads a two-digit number; padded allows a leading space.
func twoDigits(a, b byte, padded bool) (int, bool) {
	if a == ' ' && padded {
		a = '0'
	}
	if !isDigit(a) || !isDigit(b) {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}
