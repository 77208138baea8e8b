package join

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
