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

// Checkpoint format (version 2), in the join's one encoding (codec.go): all
// integers uvarint unless said otherwise, "varint" being zigzag-encoded;
// a chain's data is kept as it is in memory (compact.go), and checked
// step by step when read:
//
//	"HSLC" version partition events_seq marks_seq
//	profiles: count, then per id: present byte, and when 1 ten str
//	          (message type, request kind, requester, responder, mapping
//	          version, exception code, purpose, purpose code, requester
//	          community, responder community), uvarint side, byte untimed
//	          (version 1: the first six str only)
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
// Restore also reads version 1, whose profiles have no purpose, communities,
// side or untimed flag (all empty, as the events of its time were).
const CheckpointVersion = 2

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
	for i := range j.profiles.items {
		e := &j.profiles.items[i]
		if e.refs == 0 {
			b = append(b, 0)
			continue
		}
		b = appendProfile(append(b, 1), &e.v, j.cross(&e.v))
	}
	// Chains are numbered per network, in the order written.
	index := make(map[*chain]uint64, j.ChainCount())
	b = appendUvarint(b, uint64(len(j.netList)))
	for _, n := range j.netList {
		b = appendNetwork(b, n, index)
	}
	b = appendUvarint(b, uint64(j.pending))
	for ch := j.head; ch != nil; ch = ch.next {
		b = appendUvarint(b, uint64(ch.net))
		b = appendUvarint(b, index[ch])
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start+len(checkpointMagic):], crcTable))
}

// appendNetwork appends a network's state, numbering its chains in index.
func appendNetwork(b []byte, n *netState, index map[*chain]uint64) []byte {
	b = appendStr(b, n.name)
	b = appendVarint(b, n.maxSeen)
	b = appendVarint(b, n.wm)
	b = appendUvarint(b, n.seq)
	b = appendUvarint(b, uint64(n.size()))
	next := uint64(0)
	put := func(ch *chain) {
		index[ch] = next
		next++
		b = appendStr(b, ch.data)
		b = appendVarint(b, ch.deadline)
		b = appendVarint(b, ch.expireAt)
		b = appendVarint(b, ch.decidedAt)
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
			b = appendVarint(b, t.at)
			b = appendUvarint(b, t.sk)
			b = appendUvarint(b, i)
		}
	})
	return b
}

// restorer rebuilds a join from the body of a checkpoint (after its magic,
// before its checksum).
type restorer struct {
	c        cursor
	version  uint64 // of the checkpoint's schema
	j        *Join
	present  []bool     // by profile id: in use
	chainsOf [][]*chain // by network index, the chains in the order written
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
	r := &restorer{c: newCursor(body, 0), j: New(rl)}
	if r.version = r.c.uvarint(); r.c.err == nil && (r.version < 1 || r.version > CheckpointVersion) {
		return nil, pos, fmt.Errorf("%w: schema version %d, this linker reads 1 to %d", ErrBadCheckpoint, r.version, CheckpointVersion)
	}
	if p := r.c.uvarint(); p > math.MaxUint32 {
		r.c.fail("partition %d", p)
	} else {
		pos.Partition = uint32(p)
	}
	pos.EventsSeq = r.c.uvarint()
	pos.MarksSeq = r.c.uvarint()
	r.profiles()
	nn := r.c.count(5)
	if nn > maxNetworks {
		r.c.fail("%d networks", nn)
	}
	for i := 0; i < nn && r.c.err == nil; i++ {
		r.network()
	}
	r.pending()
	if err := r.finish(); err != nil {
		return nil, pos, err
	}
	return r.j, pos, nil
}

func (r *restorer) profiles() {
	np := r.c.count(1)
	if np > math.MaxUint32 {
		r.c.fail("%d profiles", np)
	}
	r.present = make([]bool, np)
	r.j.profiles.items = make([]internEntry[profile], np)
	for i := range np {
		switch r.c.byte1() {
		case 0:
		case 1:
			r.present[i] = true
			p, x := readProfile(&r.c, r.version)
			if x != (crossFields{}) {
				p.xc = r.j.crosses.add(x) + 1
			}
			r.j.profiles.items[i].v = p
		default:
			r.c.fail("profile %d presence", i)
		}
	}
}

// network restores one network: its clocks, its chains and its timers.
func (r *restorer) network() {
	name := r.c.str()
	if _, dup := r.j.nets[name]; dup {
		r.c.fail("network %q twice", name)
		return
	}
	n := r.j.net(name)
	n.maxSeen, n.wm, n.seq = r.c.varint(), r.c.varint(), r.c.uvarint()
	list := make([]*chain, r.c.count(6))
	for k := range list {
		if list[k] = r.chain(n, k); list[k] == nil {
			break
		}
	}
	nt := r.c.count(3)
	n.timers = timerQueue{}
	restored := make([]timer, 0, nt)
	for range nt {
		at, sk, ci := r.c.varint(), r.c.uvarint(), r.c.uvarint()
		if r.c.err != nil {
			break
		}
		if ci >= uint64(len(list)) || sk>>2 > n.seq {
			r.c.fail("timer of chain %d seq %d in %q", ci, sk>>2, name)
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
	r.chainsOf = append(r.chainsOf, list)
}

// chain restores chain k of network n, nil when it is malformed.
func (r *restorer) chain(n *netState, k int) *chain {
	ch := &chain{net: n.idx}
	ch.data = r.c.str()
	ch.deadline, ch.expireAt, ch.decidedAt = r.c.varint(), r.c.varint(), r.c.varint()
	v := r.c.uvarint()
	st, fl := chainState(r.c.byte1()), r.c.byte1()
	if r.c.err != nil {
		return nil
	}
	if v > math.MaxUint32 || st >= stateCount || fl&^flagMask != 0 {
		r.c.fail("chain %d of %q: version %d state %d flags %#x", k, n.name, v, st, fl)
		return nil
	}
	ch.version, ch.state, ch.flags = uint32(v), st, fl
	if err := r.j.checkData(ch, r.present); err != nil {
		r.c.fail("chain %d of %q: %v", k, n.name, err)
		return nil
	}
	if n.lookup(r.j.seed, ch.key()) != nil {
		r.c.fail("chain key %q twice", ch.key())
		return nil
	}
	n.insert(r.j.seed, ch)
	return ch
}

// pending restores the list of pending chains, oldest first.
func (r *restorer) pending() {
	npend := r.c.count(2)
	for range npend {
		ni, ci := r.c.uvarint(), r.c.uvarint()
		if r.c.err != nil {
			break
		}
		if ni >= uint64(len(r.chainsOf)) || ci >= uint64(len(r.chainsOf[ni])) {
			r.c.fail("pending chain %d/%d", ni, ci)
			break
		}
		ch := r.chainsOf[ni][ci]
		if (ch.state != stateOpen && ch.state != stateWaiting) || ch.prev != nil || r.j.head == ch {
			r.c.fail("pending chain %d/%d in state %d or listed twice", ni, ci, ch.state)
			break
		}
		r.j.linkPending(ch)
	}
}

// finish checks that everything was read and consistent.
func (r *restorer) finish() error {
	if r.c.err == nil && r.c.more() {
		r.c.fail("%d bytes after the end", len(r.c.d)-r.c.off)
	}
	if r.c.err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, r.c.err)
	}
	for _, list := range r.chainsOf {
		for _, ch := range list {
			if (ch.state == stateOpen || ch.state == stateWaiting) != (ch.prev != nil || r.j.head == ch) {
				return fmt.Errorf("%w: chain %q pending state and list disagree", ErrBadCheckpoint, ch.key())
			}
		}
	}
	r.j.profiles.rebuild()
	r.j.crosses.rebuild()
	return nil
}

// checkData validates a chain's data read from a checkpoint and counts its
// profile references.
func (j *Join) checkData(ch *chain, present []bool) error {
	key, off := strAt(ch.data, 0)
	if off < 0 || key == "" {
		return errors.New("bad key")
	}
	hasSteps := off < len(ch.data)
	for off < len(ch.data) {
		var s step
		if s, off = decodeStep(ch.data, off); off < 0 {
			return errors.New("bad step")
		}
		if int(s.profile) >= len(present) || !present[s.profile] {
			return fmt.Errorf("bad profile %d", s.profile)
		}
		j.profiles.items[s.profile].refs++
		if xc := j.profiles.items[s.profile].v.xc; xc != 0 {
			j.crosses.items[xc-1].refs++
		}
	}
	switch {
	case ch.state == stateClosed && hasSteps:
		return errors.New("closed chain with steps")
	case ch.state == stateClosed:
		return nil
	case !hasSteps:
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
		if j.decider(ch, steps) < 0 {
			return errors.New("decided without a deciding answer")
		}
	}
	return nil
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, crcTable) }
