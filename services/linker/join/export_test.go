package join

import (
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// What the join's external tests look at inside it.

// NetChains is the number of chains of a network in its hash index.
func (j *Join) NetChains(network string) int { return len(j.nets[network].chains) }

// NetTimers is the number of timers a network has queued.
func (j *Join) NetTimers(network string) int { return j.nets[network].timers.len() }

// CheckpointMagic starts every checkpoint.
const CheckpointMagic = checkpointMagic

// AppendCRC appends the checksum of a checkpoint whose body follows the
// magic in d.
func AppendCRC(d []byte) []byte {
	var sum [4]byte
	c := crc32Of(d[len(checkpointMagic):])
	sum[0], sum[1], sum[2], sum[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	return append(d, sum[:]...)
}

// AppendStep is how a chain keeps ev (with profile number 0).
func AppendStep(b []byte, ev *hinscorev1.ExchangeEvent) []byte { return appendStep(b, ev, 0) }

// DecodeStep decodes the step at the start of d and returns its event time.
func DecodeStep(d string) int64 {
	s, _ := decodeStep(d, 0)
	return s.t
}
