package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/config"
)

const casesExportUsage = "usage: mash cases export REFERRAL_ID --reason TEXT --out FILE (MASH_TOKEN: a manager's API credential)"

// maxExport bounds the export the command accepts: far above any child's record, and
// still a bound.
const maxExport = 1 << 30

// casesExport answers a subject access request through the triage API (POST
// /v1/cases/{id}/export) as the manager whose credential MASH_TOKEN holds, and writes the
// document to a new file. The file holds the child's personal data by design: it is made
// readable by its owner alone, and an existing file is never overwritten, so an export
// cannot silently replace another child's.
func casesExport(ctx context.Context, args []string) error {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	fset := flag.NewFlagSet("mash cases export", flag.ContinueOnError)
	s := config.New(fset)
	apiURL := s.String("api-url", "MASH_API_URL", "http://127.0.0.1:8080", "base URL of the mash HTTP API")
	reason := s.String("reason", "MASH_EXPORT_REASON", "", "why the child's record is exported, e.g. the subject access request's reference (required)")
	out := s.String("out", "MASH_EXPORT_OUT", "", "the file to write the export to; it must not exist (required)")
	if err := s.Parse(args); err != nil {
		return err
	}
	// The credential comes from the environment only: a flag would show in ps and in -h.
	token := os.Getenv("MASH_TOKEN")
	if id == "" && fset.NArg() > 0 {
		id = fset.Arg(0)
	}
	switch {
	case id == "":
		return errors.New(casesExportUsage)
	case strings.TrimSpace(*reason) == "":
		return errors.New("--reason: required: why the child's record is exported (the subject access request's reference)")
	case *out == "":
		return errors.New("--out: required: the file to write the export to (it must not exist)")
	case token == "":
		return errors.New("MASH_TOKEN: required: a manager's API credential (mash clients create --role manager)")
	}
	// Refused before the API is asked, so a refused command leaves no export on the trail.
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("--out %s: the file exists; an export never overwrites a file: name a new one", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	base, err := url.Parse(*apiURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("MASH_API_URL %q: must be an http:// or https:// URL", *apiURL)
	}
	if base.Scheme == "http" {
		if ip := net.ParseIP(base.Hostname()); base.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("MASH_API_URL %q: use https beyond loopback: the credential and the child's record must not cross a network in clear", *apiURL)
		}
	}
	body, err := json.Marshal(map[string]string{"reason": *reason})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, base.JoinPath("/v1/cases/"+url.PathEscape(id)+"/export").String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("mash cases export %s: %w", id, err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxExport+1))
	if err != nil {
		return fmt.Errorf("mash cases export %s: read the answer: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mash cases export %s: %s: %s", id, resp.Status, bytes.TrimSpace(doc))
	}
	if len(doc) > maxExport {
		return fmt.Errorf("mash cases export %s: the export is larger than %d bytes", id, maxExport)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, doc, "", "  "); err != nil {
		return fmt.Errorf("mash cases export %s: the answer is not JSON: %w", id, err)
	}
	pretty.WriteByte('\n')
	if err := writeNewFile(*out, pretty.Bytes()); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	var summary struct {
		Referrals []struct {
			Notifications []json.RawMessage `json:"notifications"`
			Trail         []json.RawMessage `json:"trail"`
		} `json:"referrals"`
		Accesses  []json.RawMessage `json:"accesses"`
		Omissions []string          `json:"omissions"`
	}
	_ = json.Unmarshal(doc, &summary)
	notifications, trail := 0, 0
	for _, r := range summary.Referrals {
		notifications += len(r.Notifications)
		trail += len(r.Trail)
	}
	_, err = fmt.Fprintf(os.Stderr, "wrote %s (owner-only): %d referral(s), %d notification(s), %d trail entries, %d access entries, %d omission(s)\n",
		*out, len(summary.Referrals), notifications, trail, len(summary.Accesses), len(summary.Omissions))
	return err
}

// writeNewFile writes data to path, which must not exist, readable by its owner alone. The
// data goes to a temporary file in the same directory first and is linked into place, so
// path never holds a partial export and an existing file is never replaced (link refuses
// one, even one made meanwhile).
func writeNewFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mash-export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errors.New("the file exists; an export never overwrites a file: name a new one")
		}
		return err
	}
	return nil
}
