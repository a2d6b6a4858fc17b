package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

type entry struct {
	At   time.Time `json:"at"`
	Op   string    `json:"op"` // attempt, ack, unknown
	Key  string    `json:"key"`
	ID   string    `json:"id,omitempty"`
	Note string    `json:"note,omitempty"`
}

type ledger struct {
	mu sync.Mutex
	f  *os.File
}

// write appends and fsyncs, so the ledger survives whatever the run does to the machine.
func (l *ledger) write(e entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.At = time.Now().UTC()
	b, _ := json.Marshal(e)
	_, _ = l.f.Write(append(b, '\n'))
	_ = l.f.Sync()
}

func readLedger(path string) (map[string]*outcome, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*outcome{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		o := out[e.Key]
		if o == nil {
			o = &outcome{}
			out[e.Key] = o
		}
		switch e.Op {
		case "ack":
			o.acked, o.id = true, e.ID
		case "unknown":
			o.unknown = true
		}
	}
	return out, sc.Err()
}

type outcome struct {
	acked, unknown bool
	id             string
}

// submitter sends referrals with unique external references; an unknown outcome (timeout,
// reset, 5xx) is retried with the same key and body, as a real client does.
func submit(ctx context.Context, s *system, lg *ledger, token string, template map[string]any, key string, rng *rand.Rand) {
	body := cloneWith(template, key)
	lg.write(entry{Op: "attempt", Key: key})
	client := &http.Client{Timeout: 5 * time.Second}
	for attempt := 0; ctx.Err() == nil || attempt < 200; attempt++ {
		addr := s.intakes[rng.IntN(len(s.intakes))]
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/referrals", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 201 || resp.StatusCode == 200 {
				var ack struct {
					ReferralID string `json:"referralId"`
				}
				_ = json.Unmarshal(b, &ack)
				lg.write(entry{Op: "ack", Key: key, ID: ack.ReferralID})
				return
			}
			if resp.StatusCode < 500 && resp.StatusCode != 429 {
				lg.write(entry{Op: "rejected", Key: key, Note: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)})
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		lg.write(entry{Op: "unknown", Key: key, Note: err.Error()})
		time.Sleep(500 * time.Millisecond)
		if attempt > 600 {
			return
		}
	}
}

func cloneWith(template map[string]any, key string) []byte {
	m := map[string]any{}
	for k, v := range template {
		m[k] = v
	}
	m["externalReference"] = key
	b, _ := json.Marshal(m)
	return b
}
