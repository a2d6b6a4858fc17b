package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/config"
)

const casesUsage = "usage: mash cases hold|unhold|erase REFERRAL_ID --reason TEXT (MASH_TOKEN: a manager's API credential)"

// casesCommand places and lifts legal holds, and erases closed cases, through the triage
// API as the manager whose credential MASH_TOKEN holds: the rule (managers only, a reason,
// an event on the trail, no erasure under a hold) is the API's, and the CLI is one more
// client of it.
func casesCommand(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "export" {
		return casesExport(ctx, args[1:])
	}
	if len(args) == 0 || (args[0] != "hold" && args[0] != "unhold" && args[0] != "erase") {
		return errors.New(casesUsage)
	}
	verb, rest := args[0], args[1:]
	var id string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("mash cases "+verb, flag.ContinueOnError)
	s := config.New(fs)
	apiURL := s.String("api-url", "MASH_API_URL", "http://127.0.0.1:8080", "base URL of the mash HTTP API")
	reason := s.String("reason", "MASH_HOLD_REASON", "", "why the case must be kept, need no longer be, or is erased (required)")
	if err := s.Parse(rest); err != nil {
		return err
	}
	// The credential comes from the environment only: a flag would show in ps and in -h.
	token := os.Getenv("MASH_TOKEN")
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	switch {
	case id == "":
		return errors.New(casesUsage)
	case strings.TrimSpace(*reason) == "" && verb == "erase":
		return errors.New("--reason: required: why the case is erased")
	case strings.TrimSpace(*reason) == "":
		return errors.New("--reason: required: why the case must be kept, or need no longer be")
	case token == "":
		return errors.New("MASH_TOKEN: required: a manager's API credential (mash clients create --role manager)")
	}
	base, err := url.Parse(*apiURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("MASH_API_URL %q: must be an http:// or https:// URL", *apiURL)
	}
	if base.Scheme == "http" {
		if ip := net.ParseIP(base.Hostname()); base.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("MASH_API_URL %q: use https beyond loopback: the credential must not cross a network in clear", *apiURL)
		}
	}
	path := "/v1/cases/" + url.PathEscape(id) + "/legal-hold"
	if verb == "unhold" {
		path += "/lift"
	}
	if verb == "erase" {
		path = "/v1/cases/" + url.PathEscape(id) + "/erase"
	}
	body, err := json.Marshal(map[string]string{"reason": *reason})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("mash cases %s %s: %w", verb, id, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("mash cases %s %s: read the answer: %w", verb, id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mash cases %s %s: %s: %s", verb, id, resp.Status, bytes.TrimSpace(out))
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", bytes.TrimSpace(out))
	return err
}
