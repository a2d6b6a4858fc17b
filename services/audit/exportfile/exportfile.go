// Package exportfile is the audit export format: JSON lines of entries, a signed
// checkpoint and inclusion proofs, written by the audit service and verified offline with
// the log's public key alone. It depends on nothing but auditlog, so an external auditor's
// tool (and the fuzzer) can use it without the service.
package exportfile

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// Export format (JSON lines, UTF-8, each line one JSON object with a "type"):
//
//	{"type":"entry","seq":12,"leaf":"<base64 leaf bytes>","redacted":true}   one per entry, seq ascending
//	{"type":"checkpoint","note":"<signed checkpoint note>"}                  exactly one
//	{"type":"proof","seq":12,"proof":"<auditlog.EncodeProof>"}              one per entry, same order
//
// Every entry is below the checkpoint's size and its proof is an inclusion proof against
// the checkpoint's root. "redacted" says the entry's payload could not be read when it was
// exported (its case was shredded); it is a statement of the exporter, not part of the
// proof, so a verifier reports it and checks only that a redacted leaf does commit to a
// payload. Entries recorded after the latest checkpoint are not exported.

// Export line types.
const (
	lineEntry      = "entry"
	lineCheckpoint = "checkpoint"
	lineProof      = "proof"
)

// maxExportLine bounds one line of an export (a leaf is at most ~15 KB, a note 64 KB).
const maxExportLine = 1 << 20

type exportLine struct {
	Type     string  `json:"type"`
	Seq      *int64  `json:"seq,omitempty"`
	Leaf     string  `json:"leaf,omitempty"`
	Redacted bool    `json:"redacted,omitempty"`
	Note     string  `json:"note,omitempty"`
	Proof    *string `json:"proof,omitempty"`
}

func marshalLine(l exportLine) []byte {
	b, err := json.Marshal(l)
	if err != nil { // cannot happen: strings and integers only
		panic(err)
	}
	return b
}

// EntryLine encodes an entry line.
func EntryLine(seq int64, leaf []byte, redacted bool) []byte {
	return marshalLine(exportLine{Type: lineEntry, Seq: &seq, Leaf: base64.StdEncoding.EncodeToString(leaf), Redacted: redacted})
}

// CheckpointLine encodes the checkpoint line.
func CheckpointLine(note string) []byte {
	return marshalLine(exportLine{Type: lineCheckpoint, Note: note})
}

// ProofLine encodes an entry's inclusion proof line.
func ProofLine(seq int64, proof []tlog.Hash) []byte {
	p := auditlog.EncodeProof(proof)
	return marshalLine(exportLine{Type: lineProof, Seq: &seq, Proof: &p})
}

// Report is the outcome of Verify.
type Report struct {
	Entries  int64 // entry lines read
	Redacted int64 // of those, marked redacted (their leaves and proofs still checked)
	TreeSize int64 // size of the signed checkpoint
	// FirstBad is the seq of the first entry (in export order) that fails; -1 if none.
	FirstBad int64
	// Line is the 1-based line of FirstBad's entry; 0 if none.
	Line   int
	Reason string
}

// ErrBadExport is wrapped when an export is not in the export format at all (as opposed to
// an entry that does not verify, which wraps auditlog.ErrMismatch and is named in the
// Report).
var ErrBadExport = errors.New("audit export: not a valid export")

// Verify checks an export trusting nothing but the log's public key vkey and its
// origin: it opens the signed checkpoint, decodes each leaf (its seq field must be the
// line's seq), and checks each entry's inclusion proof against the checkpoint's root. An
// entry that fails makes the error wrap auditlog.ErrMismatch and the Report name the first
// such entry in export order. A malformed export (bad JSON, lines out of order, a missing
// checkpoint or proof) wraps ErrBadExport; a checkpoint that does not open with the key is
// an error naming no entry, as nothing is then proven.
func Verify(r io.Reader, vkey, origin string) (Report, error) {
	rep := Report{FirstBad: -1}
	type entry struct {
		seq      int64
		line     int
		hash     tlog.Hash
		bad      string
		redacted bool
	}
	var entries []entry
	var cp auditlog.Checkpoint
	haveCP := false
	proofs := 0
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		raw, err := readLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		if err != nil {
			return rep, fmt.Errorf("%w: line %d: %v", ErrBadExport, lineNo, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return rep, fmt.Errorf("%w: line %d is empty", ErrBadExport, lineNo)
		}
		var l exportLine
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return rep, fmt.Errorf("%w: line %d: %v", ErrBadExport, lineNo, err)
		}
		// Only the exporter's own encoding is accepted (encoding/json would also take keys in
		// another case, duplicate keys, spacing): one export has exactly one text.
		if !bytes.Equal(marshalLine(l), raw) {
			return rep, fmt.Errorf("%w: line %d is not in the export's canonical form", ErrBadExport, lineNo)
		}
		switch l.Type {
		case lineEntry:
			if haveCP {
				return rep, fmt.Errorf("%w: line %d: entry after the checkpoint", ErrBadExport, lineNo)
			}
			if l.Seq == nil || *l.Seq < 0 || (len(entries) > 0 && *l.Seq <= entries[len(entries)-1].seq) {
				return rep, fmt.Errorf("%w: line %d: entry seq missing, negative or not ascending", ErrBadExport, lineNo)
			}
			e := entry{seq: *l.Seq, line: lineNo, redacted: l.Redacted}
			leaf, err := base64.StdEncoding.Strict().DecodeString(l.Leaf)
			switch {
			case err != nil:
				e.bad = "leaf is not base64: " + err.Error()
			default:
				ent, err := auditlog.UnmarshalLeaf(leaf)
				switch {
				case err != nil:
					e.bad = "leaf does not decode: " + err.Error()
				case ent.Seq != e.seq:
					e.bad = fmt.Sprintf("leaf says seq %d but the line says %d", ent.Seq, e.seq)
				case l.Redacted && ent.PayloadSHA256 == [32]byte{}:
					e.bad = "marked redacted but its leaf commits to no payload"
				}
				e.hash = auditlog.LeafHash(leaf)
			}
			if l.Redacted {
				rep.Redacted++
			}
			entries = append(entries, e)
		case lineCheckpoint:
			if haveCP {
				return rep, fmt.Errorf("%w: line %d: a second checkpoint", ErrBadExport, lineNo)
			}
			c, err := auditlog.OpenCheckpoint([]byte(l.Note), vkey, origin)
			if err != nil {
				return rep, fmt.Errorf("audit: export checkpoint (line %d) does not open with the key: %w", lineNo, err)
			}
			cp, haveCP = c, true
			rep.TreeSize = c.Size
		case lineProof:
			if !haveCP {
				return rep, fmt.Errorf("%w: line %d: proof before the checkpoint", ErrBadExport, lineNo)
			}
			if proofs >= len(entries) || l.Seq == nil || *l.Seq != entries[proofs].seq || l.Proof == nil {
				return rep, fmt.Errorf("%w: line %d: proofs must follow the entries' order, one each", ErrBadExport, lineNo)
			}
			e := &entries[proofs]
			proofs++
			if e.bad != "" {
				continue
			}
			proof, err := auditlog.DecodeProof(*l.Proof)
			if err != nil {
				e.bad = "proof does not decode: " + err.Error()
				continue
			}
			if err := auditlog.VerifyInclusion(proof, cp.Size, e.seq, cp.Root, e.hash); err != nil {
				e.bad = "not included in the signed checkpoint: " + err.Error()
			}
		default:
			return rep, fmt.Errorf("%w: line %d: unknown line type %q", ErrBadExport, lineNo, l.Type)
		}
	}
	rep.Entries = int64(len(entries))
	if !haveCP {
		return rep, fmt.Errorf("%w: no checkpoint line", ErrBadExport)
	}
	if proofs != len(entries) {
		return rep, fmt.Errorf("%w: %d entries but %d proofs", ErrBadExport, len(entries), proofs)
	}
	for _, e := range entries {
		if e.bad != "" {
			rep.FirstBad, rep.Line, rep.Reason = e.seq, e.line, e.bad
			return rep, fmt.Errorf("%w: entry %d (line %d): %s", auditlog.ErrMismatch, e.seq, e.line, e.bad)
		}
	}
	return rep, nil
}

// readLine returns the next line without its newline, refusing lines over maxExportLine.
// A final line without a newline counts; io.EOF means no more lines.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > maxExportLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxExportLine)
		}
		switch {
		case err == nil:
			return out[:len(out)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		default:
			return nil, err
		}
	}
}
