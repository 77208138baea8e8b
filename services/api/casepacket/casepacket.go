// Package casepacket is the signed case packet: one tar archive holding an
// investigation's files, a manifest of their SHA-256 digests, and an
// Ed25519 signature of the manifest. Write makes one, Verify checks one
// byte for byte. What the files say (chains, originals, queries, audit
// entries, the violation count) is the api's; this package knows only how
// they are sealed, and the rule that counts violation units.
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
	"path"
	"strings"
	"time"
)

// Format names the packet's layout; it changes when a reader would have
// to read a packet differently.
const Format = "hinscore-case/1"

// The two members every packet ends with.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
)

// File is one member of a packet.
type File struct {
	Name string
	Data []byte
}

// Manifest is manifest.json: what the packet is about, who made it, the
// key that signed it, and the SHA-256 of every other member.
type Manifest struct {
	Format      string `json:"format"`
	Responder   string `json:"responder"`
	Period      string `json:"period"`
	PeriodStart string `json:"period_start"` // RFC 3339, inclusive
	PeriodEnd   string `json:"period_end"`   // RFC 3339, exclusive
	GeneratedAt string `json:"generated_at"`
	GeneratedBy string `json:"generated_by"`
	// PublicKey is the Ed25519 public key of the signature, base64 (the
	// one `hinscore case build` prints).
	PublicKey string `json:"public_key"`
	// Files maps each member's name to the hex SHA-256 of its bytes:
	// every member but manifest.json and manifest.sig.
	Files map[string]string `json:"files"`
}

// ErrBadMember is wrapped by Write's errors about the files given.
var ErrBadMember = errors.New("casepacket: bad member")

// maxNameLen keeps every name within a ustar header's name and prefix.
const maxNameLen = 200

// Write writes the packet of files to w: the files in the order given,
// then manifest.json (m with Format, PublicKey and Files filled in) and
// manifest.sig, signed with key. Every header is canonical (header), so
// Verify can tell any byte outside the members' contents that changed.
func Write(w io.Writer, files []File, m Manifest, key ed25519.PrivateKey, at time.Time) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("casepacket.Write: no signing key")
	}
	m.Format = Format
	m.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	m.Files = make(map[string]string, len(files))
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			return err
		}
		if _, dup := m.Files[f.Name]; dup {
			return fmt.Errorf("%w: %s twice", ErrBadMember, f.Name)
		}
		sum := sha256.Sum256(f.Data)
		m.Files[f.Name] = hex.EncodeToString(sum[:])
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("casepacket.Write: %w", err)
	}
	manifest = append(manifest, '\n')
	all := append(append([]File{}, files...),
		File{Name: ManifestName, Data: manifest},
		File{Name: SignatureName, Data: signatureFile(manifest, ed25519.Sign(key, manifest))})
	tw := tar.NewWriter(w)
	for _, f := range all {
		if err := writeMember(tw, f, at); err != nil {
			return fmt.Errorf("casepacket.Write %s: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("casepacket.Write: %w", err)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == ManifestName || name == SignatureName:
		return fmt.Errorf("%w: %s is the packet's own", ErrBadMember, name)
	case name == "" || len(name) > maxNameLen || path.Clean(name) != name || path.IsAbs(name) ||
		strings.HasPrefix(name, "../") || name == "..":
		return fmt.Errorf("%w: name %q", ErrBadMember, name)
	}
	for _, c := range []byte(name) {
		if c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("%w: name %q: printable ASCII without spaces only", ErrBadMember, name)
		}
	}
	return nil
}

// header is the one header a member of this name and size may have.
func header(name string, size int64, at time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
		ModTime: at.UTC().Truncate(time.Second), Format: tar.FormatUSTAR}
}

func writeMember(tw *tar.Writer, f File, at time.Time) error {
	if err := tw.WriteHeader(header(f.Name, int64(len(f.Data)), at)); err != nil {
		return err
	}
	_, err := tw.Write(f.Data)
	return err
}

// signatureFile is manifest.sig: the SHA-256 of manifest.json (which lets
// Verify tell which of the two changed) and the Ed25519 signature of
// manifest.json's bytes, one line each.
func signatureFile(manifest, sig []byte) []byte {
	return signatureFileOf(sha256.Sum256(manifest), sig)
}

// parseSignatureFile reads manifest.sig; ok is false unless it is exactly
// what signatureFile writes for some digest and signature.
func parseSignatureFile(b []byte) (digest, sig []byte, ok bool) {
	lines := strings.Split(string(b), "\n")
	if len(lines) != 3 || lines[2] != "" {
		return nil, nil, false
	}
	d, okD := strings.CutPrefix(lines[0], "sha256 ")
	s, okS := strings.CutPrefix(lines[1], "ed25519 ")
	if !okD || !okS {
		return nil, nil, false
	}
	digest, errD := hex.DecodeString(d)
	sig, errS := base64.StdEncoding.DecodeString(s)
	if errD != nil || errS != nil || len(digest) != sha256.Size || len(sig) != ed25519.SignatureSize {
		return nil, nil, false
	}
	var manifest [sha256.Size]byte
	copy(manifest[:], digest)
	if !bytes.Equal(signatureFileOf(manifest, sig), b) {
		return nil, nil, false
	}
	return digest, sig, true
}

func signatureFileOf(digest [sha256.Size]byte, sig []byte) []byte {
	return []byte("sha256 " + hex.EncodeToString(digest[:]) + "\ned25519 " + base64.StdEncoding.EncodeToString(sig) + "\n")
}
