package casepacket

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Verify's errors: the archive is not one a reader can take apart
// (ErrUnreadable), a member changed, was added or removed (ErrChanged, as
// a *ChangedError naming it), or the packet is signed with another key
// than the one given (ErrWrongKey).
var (
	ErrUnreadable = errors.New("casepacket: the archive is unreadable")
	ErrChanged    = errors.New("casepacket: the packet changed")
	ErrWrongKey   = errors.New("casepacket: not signed with the given public key")
)

// ChangedError names the member that changed and says how.
type ChangedError struct {
	File string
	Why  string
}

func (e *ChangedError) Error() string { return fmt.Sprintf("%s changed: %s", e.File, e.Why) }

// Is makes a ChangedError match ErrChanged.
func (e *ChangedError) Is(target error) bool { return target == ErrChanged }

func changed(file, format string, args ...any) error {
	return &ChangedError{File: file, Why: fmt.Sprintf(format, args...)}
}

// Report is what a packet that verifies says of itself.
type Report struct {
	Manifest Manifest
	// Members counts every member, manifest.json and manifest.sig included.
	Members int
	Bytes   int
	data    map[string][]byte
}

// File returns a verified member's bytes.
func (r Report) File(name string) ([]byte, bool) {
	b, ok := r.data[name]
	return b, ok
}

// ReadJSON decodes a verified JSON member into into.
func (r Report) ReadJSON(name string, into any) error {
	b, ok := r.data[name]
	if !ok {
		return fmt.Errorf("casepacket: no member %s", name)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("casepacket: %s: %w", name, err)
	}
	return nil
}

// member is one member as read, with where its header starts.
type member struct {
	name   string
	offset int64
	data   []byte
	header *tar.Header
}

// Verify checks a packet: the archive is exactly what Write makes of its
// members (so no byte of a header, padding or the end changed), the
// signature of manifest.json verifies with the key it names, or with
// trusted when that is given, and every other member is in the manifest
// with its digest, none missing, none added.
func Verify(archive []byte, trusted ed25519.PublicKey) (Report, error) {
	members, err := readMembers(archive)
	if err != nil {
		return Report{}, err
	}
	if err := canonical(archive, members); err != nil {
		return Report{}, err
	}
	byName := map[string]*member{}
	for i := range members {
		m := &members[i]
		if _, dup := byName[m.name]; dup {
			return Report{}, changed(m.name, "a second member of this name")
		}
		byName[m.name] = m
	}
	manifest, err := checkSignature(byName, trusted)
	if err != nil {
		return Report{}, err
	}
	if err := checkDigests(members, manifest); err != nil {
		return Report{}, err
	}
	rep := Report{Manifest: manifest, Members: len(members), Bytes: len(archive), data: make(map[string][]byte, len(members))}
	for _, m := range members {
		rep.data[m.name] = m.data
	}
	return rep, nil
}

// readMembers takes the archive apart; a header that does not parse makes
// it unreadable, named by where it is.
func readMembers(archive []byte) ([]member, error) {
	r := bytes.NewReader(archive)
	tr := tar.NewReader(r)
	var (
		out  []member
		next int64 // where the next header starts
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: at byte %d (%s): %v", ErrUnreadable, next, after(out), err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 || hdr.Size > int64(len(archive)) {
			return nil, fmt.Errorf("%w: at byte %d (%s): member %q is not a regular file of a possible size", ErrUnreadable, next, after(out), hdr.Name)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrUnreadable, hdr.Name, err)
		}
		out = append(out, member{name: hdr.Name, offset: next, data: data, header: hdr})
		next += blockSize + padded(hdr.Size)
	}
}

const blockSize = 512

func padded(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

func after(ms []member) string {
	if len(ms) == 0 {
		return "the first member's header"
	}
	return "the header after " + ms[len(ms)-1].name
}

// canonical writes the members again as Write would and compares: the
// first byte that differs names the member whose header or padding it is
// in, or the end of the archive.
func canonical(archive []byte, members []member) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := writeMember(tw, File{Name: m.name, Data: m.data}, m.header.ModTime); err != nil {
			return changed(m.name, "its header cannot be written again: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("casepacket.Verify: %w", err)
	}
	again := buf.Bytes()
	at := 0
	for at < len(again) && at < len(archive) && again[at] == archive[at] {
		at++
	}
	if at == len(again) && at == len(archive) {
		return nil
	}
	for _, m := range slices.Backward(members) {
		if int64(at) >= m.offset+blockSize+padded(int64(len(m.data))) {
			break
		}
		if int64(at) < m.offset {
			continue
		}
		if int64(at) < m.offset+blockSize {
			return changed(m.name, "its header at byte %d is not the one written for it", at)
		}
		return changed(m.name, "the padding after its content at byte %d is not zeros", at)
	}
	return fmt.Errorf("%w: the end of the archive at byte %d is not what a packet ends with", ErrUnreadable, at)
}

// checkSignature reads the manifest and checks its signature: with trusted
// when given, else with the key the manifest names.
func checkSignature(byName map[string]*member, trusted ed25519.PublicKey) (Manifest, error) {
	mf, sf := byName[ManifestName], byName[SignatureName]
	if mf == nil {
		return Manifest{}, changed(ManifestName, "removed")
	}
	if sf == nil {
		return Manifest{}, changed(SignatureName, "removed")
	}
	digest, sig, ok := parseSignatureFile(sf.data)
	if !ok {
		return Manifest{}, changed(SignatureName, "not a signature file (a sha256 line and an ed25519 line)")
	}
	var m Manifest
	jsonErr := json.Unmarshal(mf.data, &m)
	key := trusted
	if key == nil {
		k, err := ParsePublicKey(m.PublicKey)
		if jsonErr != nil || err != nil {
			return Manifest{}, changed(ManifestName, "its public_key cannot be read (json: %v; key: %v)", jsonErr, err)
		}
		key = k
	}
	sum := sha256.Sum256(mf.data)
	if ed25519.Verify(key, mf.data, sig) {
		if !bytes.Equal(sum[:], digest) {
			return Manifest{}, changed(SignatureName, "its sha256 line is not manifest.json's digest")
		}
		if jsonErr != nil {
			return Manifest{}, changed(ManifestName, "signed but not JSON: %v", jsonErr)
		}
		return m, nil
	}
	if !bytes.Equal(sum[:], digest) {
		return Manifest{}, changed(ManifestName, "its digest is not the signed one (sha256 %s)", hex.EncodeToString(sum[:]))
	}
	if trusted != nil && m.PublicKey != base64.StdEncoding.EncodeToString(trusted) {
		return Manifest{}, fmt.Errorf("%w: the packet names public key %s, not %s", ErrWrongKey, m.PublicKey, PublicKeyString(trusted))
	}
	return Manifest{}, changed(SignatureName, "the signature does not verify with public key %s", PublicKeyString(key))
}

// checkDigests compares every member with the manifest: each in it with
// its digest, every one it lists present.
func checkDigests(members []member, m Manifest) error {
	seen := map[string]bool{}
	for _, mem := range members {
		if mem.name == ManifestName || mem.name == SignatureName {
			continue
		}
		want, ok := m.Files[mem.name]
		if !ok {
			return changed(mem.name, "added: the manifest does not list it")
		}
		sum := sha256.Sum256(mem.data)
		if got := hex.EncodeToString(sum[:]); got != want {
			return changed(mem.name, "sha256 %s, the manifest says %s", got, want)
		}
		seen[mem.name] = true
	}
	names := make([]string, 0, len(m.Files))
	for name := range m.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !seen[name] {
			return changed(name, "removed: the manifest lists it, the archive does not hold it")
		}
	}
	return nil
}
