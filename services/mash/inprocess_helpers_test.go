package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// submitExample submits the shared example referral over HTTP with token (a referrer's) and
// returns its id, failing the test unless intake accepts it.
func (ip *inProcess) submitExample(t *testing.T, token string) string {
	t.Helper()
	body, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+ip.httpAddr+"/v1/referrals", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ack); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit the example: %d %v", resp.StatusCode, err)
	}
	return ack.ReferralID
}

// holdEveryWorkConnection opens a transaction on every connection of pool it can take and
// holds them until the test ends. One connection is held for good (the audit sequencer's,
// which keeps its lock on it), so it takes all it can until none comes free for two seconds.
func holdEveryWorkConnection(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	var held []pgx.Tx
	t.Cleanup(func() {
		for _, tx := range held {
			_ = tx.Rollback(context.Background())
		}
	})
	for idle := 0; idle < 2; {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		tx, err := pool.Begin(actx)
		cancel()
		switch {
		case err == nil:
			held, idle = append(held, tx), 0
		case ctx.Err() != nil:
			t.Fatalf("opened %d transactions on %d work connections: %v", len(held), pool.Config().MaxConns, err)
		default:
			idle++
		}
	}
	if got := pool.Stat().AcquiredConns(); got != pool.Config().MaxConns {
		t.Fatalf("%d of %d work connections taken", got, pool.Config().MaxConns)
	}
}
