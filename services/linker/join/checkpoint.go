package join

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// Checkpoint format (version 1), all integers uvarint unless said otherwise,
// "varint" being zigzag-encoded:
//
//	"HSLC" version partition events_seq marks_seq
//	profiles: count, then per id: present byte, and when 1 six str
//	          (message type, request kind, requester, responder, mapping
//	          version, exception code)
//	networks: count, then per network (in index order):
//	          str name, varint max_seen, varint watermark, timer_seq,
//	          chains: count, then per chain: str data, varint deadline,
//	                  varint expire_at, varint decided_at, version,
//	                  byte state, byte flags
//	          timers: count, then per timer: varint at, seq_kind, chain index
//	pending:  count, then per chain (oldest first): network index, chain index
//	crc32c of everything before it, 4 bytes little endian
//
// It is the whole state of a partition's join: restoring it and feeding the
// events after events_seq (and the idle-rule records after marks_seq) gives
// exactly the outcomes an uninterrupted join gives, versions included. Only
// the wall-clock time each network last saw an event is left out: the idle
// rule counts from the restore.

// CheckpointVersion is the schema version written in every checkpoint.
const CheckpointVersion = 1

const checkpointMagic = "HSLC"

// ErrBadCheckpoint reports a checkpoint that cannot be restored.
var ErrBadCheckpoint = errors.New("linker: bad checkpoint")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Position is what a checkpoint covers: the partition, the last EVENTS
// sequence applied and the last idle-rule record applied.
type Position struct {
	Partition uint32
	EventsSeq uint64
	MarksSeq  uint64
}

// Snapshot appends the encoded state to dst.
func (j *Join) Snapshot(dst []byte, pos Position) []byte {
	start := len(dst)
	b := append(dst, checkpointMagic...)
	b = appendUvarint(b, CheckpointVersion)
	b = appendUvarint(b, uint64(pos.Partition))
	b = appendUvarint(b, pos.EventsSeq)
	b = appendUvarint(b, pos.MarksSeq)

	b = appendUvarint(b, uint64(len(j.profiles.items)))
	for _, e := range j.profiles.items {
		if e.refs == 0 {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		p := e.p
		for _, s := range []string{p.messageType, p.requestKind, p.requesterOrg, p.responderOrg, p.mappingVersion, p.exceptionCode} {
			b = appendStr(b, s)
		}
	}

	// Chains are numbered per network, in the order written.
	index := make(map[*chain]uint64, j.ChainCount())
	b = appendUvarint(b, uint64(len(j.netList)))
	for _, n := range j.netList {
		b = appendStr(b, n.name)
		b = appendUvarint(b, zigzag(n.maxSeen))
		b = appendUvarint(b, zigzag(n.wm))
		b = appendUvarint(b, n.seq)
		b = appendUvarint(b, uint64(n.size()))
		next := uint64(0)
		put := func(ch *chain) {
			index[ch] = next
			next++
			b = appendStr(b, ch.data)
			b = appendUvarint(b, zigzag(ch.deadline))
			b = appendUvarint(b, zigzag(ch.expireAt))
			b = appendUvarint(b, zigzag(ch.decidedAt))
			b = appendUvarint(b, uint64(ch.version))
			b = append(b, byte(ch.state), ch.flags)
		}
		for _, ch := range n.chains {
			put(ch)
		}
		for _, ch := range n.collide {
			put(ch)
		}
		// Timers of forgotten chains do nothing when they fire: leave them.
		live := 0
		n.timers.all(func(t *timer) {
			if _, ok := index[t.ch]; ok && t.ch.net == n.idx {
				live++
			}
		})
		b = appendUvarint(b, uint64(live))
		n.timers.all(func(t *timer) {
			if i, ok := index[t.ch]; ok && t.ch.net == n.idx {
				b = appendUvarint(b, zigzag(t.at))
				b = appendUvarint(b, t.sk)
				b = appendUvarint(b, i)
			}
		})
	}
	b = appendUvarint(b, uint64(j.pending))
	for ch := j.head; ch != nil; ch = ch.next {
		b = appendUvarint(b, uint64(ch.net))
		b = appendUvarint(b, index[ch])
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start+len(checkpointMagic):], crcTable))
}

// reader decodes untrusted bytes; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format+" (at byte %d)", append([]any{ErrBadCheckpoint}, append(args, r.off)...)...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 { return unzigzag(r.uvarint()) }

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("string of %d bytes past the end", n)
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// count reads a count of items of at least min bytes each, refusing counts
// the remaining bytes cannot hold (so a corrupt count cannot allocate).
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64((len(r.b)-r.off)/minSize) {
		r.fail("count %d too large", n)
		return 0
	}
	return int(n)
}

// Restore rebuilds a partition's join from a checkpoint.
func Restore(rl Rules, data []byte) (*Join, Position, error) {
	var pos Position
	if len(data) < len(checkpointMagic)+4 || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, pos, fmt.Errorf("%w: no checkpoint header", ErrBadCheckpoint)
	}
	body, sum := data[len(checkpointMagic):len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, pos, fmt.Errorf("%w: checksum mismatch", ErrBadCheckpoint)
	}
	r := &reader{b: body}
	if v := r.uvarint(); r.err == nil && v != CheckpointVersion {
		return nil, pos, fmt.Errorf("%w: schema version %d, this linker reads %d", ErrBadCheckpoint, v, CheckpointVersion)
	}
	p := r.uvarint()
	if p > math.MaxUint32 {
		r.fail("partition %d", p)
	}
	pos.Partition = uint32(p)
	pos.EventsSeq = r.uvarint()
	pos.MarksSeq = r.uvarint()

	j := New(rl)
	np := r.count(1)
	if np > math.MaxUint32 {
		r.fail("%d profiles", np)
	}
	present := make([]bool, np)
	j.profiles.items = make([]profileEntry, np)
	for i := range np {
		switch r.byte1() {
		case 0:
		case 1:
			present[i] = true
			j.profiles.items[i].p = profile{r.str(), r.str(), r.str(), r.str(), r.str(), r.str()}
		default:
			r.fail("profile %d presence", i)
		}
	}

	nn := r.count(5)
	if nn > maxNetworks {
		r.fail("%d networks", nn)
	}
	chainsOf := make([][]*chain, 0, nn)
	for i := 0; i < nn && r.err == nil; i++ {
		name := r.str()
		if _, dup := j.nets[name]; dup {
			r.fail("network %q twice", name)
			break
		}
		n := j.net(name)
		n.maxSeen, n.wm, n.seq = r.varint(), r.varint(), r.uvarint()
		list := make([]*chain, r.count(6))
		for k := range list {
			ch := &chain{net: n.idx}
			ch.data = r.str()
			ch.deadline, ch.expireAt, ch.decidedAt = r.varint(), r.varint(), r.varint()
			v := r.uvarint()
			st, fl := chainState(r.byte1()), r.byte1()
			if r.err != nil {
				break
			}
			if v > math.MaxUint32 || st >= stateCount || fl&^flagMask != 0 {
				r.fail("chain %d of %q: version %d state %d flags %#x", k, name, v, st, fl)
				break
			}
			ch.version, ch.state, ch.flags = uint32(v), st, fl
			if err := j.checkData(ch, present); err != nil {
				r.fail("chain %d of %q: %v", k, name, err)
				break
			}
			if n.lookup(j.seed, ch.key()) != nil {
				r.fail("chain key %q twice", ch.key())
				break
			}
			n.insert(j.seed, ch)
			list[k] = ch
		}
		nt := r.count(3)
		n.timers = timerQueue{}
		restored := make([]timer, 0, nt)
		for range nt {
			at, sk, ci := r.varint(), r.uvarint(), r.uvarint()
			if r.err != nil {
				break
			}
			if ci >= uint64(len(list)) || sk>>2 > n.seq {
				r.fail("timer of chain %d seq %d in %q", ci, sk>>2, name)
				break
			}
			restored = append(restored, timer{at: at, sk: sk, ch: list[ci]})
		}
		// In order, they fill the queue's lanes as they were filled live.
		slices.SortFunc(restored, func(a, b timer) int {
			return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.sk, b.sk))
		})
		for _, t := range restored {
			n.timers.push(t)
		}
		chainsOf = append(chainsOf, list)
	}

	npend := r.count(2)
	for range npend {
		ni, ci := r.uvarint(), r.uvarint()
		if r.err != nil {
			break
		}
		if ni >= uint64(len(chainsOf)) || ci >= uint64(len(chainsOf[ni])) {
			r.fail("pending chain %d/%d", ni, ci)
			break
		}
		ch := chainsOf[ni][ci]
		if (ch.state != stateOpen && ch.state != stateWaiting) || ch.prev != nil || j.head == ch {
			r.fail("pending chain %d/%d in state %d or listed twice", ni, ci, ch.state)
			break
		}
		j.linkPending(ch)
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes after the end", len(r.b)-r.off)
	}
	if r.err != nil {
		return nil, pos, r.err
	}
	for _, list := range chainsOf {
		for _, ch := range list {
			if (ch.state == stateOpen || ch.state == stateWaiting) != (ch.prev != nil || j.head == ch) {
				return nil, pos, fmt.Errorf("%w: chain %q pending state and list disagree", ErrBadCheckpoint, ch.key())
			}
		}
	}
	j.profiles.rebuild()
	return j, pos, nil
}

// checkData validates a chain's data read from a checkpoint and counts its
// profile references.
func (j *Join) checkData(ch *chain, present []bool) error {
	r := &reader{b: []byte(ch.data)}
	key := r.str()
	if r.err != nil || key == "" {
		return errors.New("bad key")
	}
	for r.off < len(r.b) && r.err == nil {
		r.uvarint() // time
		r.uvarint() // raw seq
		if role, status := r.uvarint(), r.uvarint(); role > math.MaxInt32 || status > math.MaxInt32 {
			return errors.New("bad role or status")
		}
		if n := r.uvarint(); n > math.MaxUint32 {
			return errors.New("bad record count")
		}
		pid := r.uvarint()
		if r.err != nil || pid >= uint64(len(present)) || !present[pid] {
			return fmt.Errorf("bad profile %d", pid)
		}
		j.profiles.items[pid].refs++
		if h := r.uvarint(); h&1 == 1 && h>>1 != 16 {
			return errors.New("packed event id is not 16 bytes")
		} else {
			r.skip(h >> 1)
		}
		r.str() // message id
		r.skip(r.uvarint() >> 1)
		for n := r.count(1); n > 0 && r.err == nil; n-- {
			r.str()
		}
	}
	if r.err != nil {
		return r.err
	}
	if ch.state == stateClosed && len(r.b) != ch.stepsOff() {
		return errors.New("closed chain with steps")
	}
	if ch.state == stateClosed {
		return nil
	}
	if len(r.b) == ch.stepsOff() {
		return errors.New("chain without steps")
	}
	// The states' invariants, which the join relies on without checking.
	steps := ch.decode(nil)
	hasReq := slices.ContainsFunc(steps, func(s step) bool { return s.role == hinscorev1.Role_ROLE_REQUEST })
	if hasReq != (ch.flags&flagHasReq != 0) {
		return errors.New("request flag does not match the steps")
	}
	switch ch.state {
	case stateWaiting, stateOrphan:
		if hasReq {
			return fmt.Errorf("state %d with a request", ch.state)
		}
	default:
		if !hasReq {
			return fmt.Errorf("state %d without a request", ch.state)
		}
	}
	if ch.state == stateDecided {
		sortSteps(steps)
		if ch.decider(steps) < 0 {
			return errors.New("decided without a deciding answer")
		}
	}
	return nil
}

func (r *reader) skip(n uint64) {
	if r.err != nil {
		return
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("%d bytes past the end", n)
		return
	}
	r.off += int(n)
}

// rebuild derives the index and free list from items whose refs were
// counted from the chains.
func (t *profileTable) rebuild() {
	t.ids = make(map[profile]uint32, len(t.items))
	t.free = t.free[:0]
	for i := range t.items {
		e := &t.items[i]
		if e.refs == 0 {
			e.p = profile{}
			t.free = append(t.free, uint32(i))
			continue
		}
		t.ids[e.p] = uint32(i)
	}
	slices.Reverse(t.free)
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, crcTable) }
