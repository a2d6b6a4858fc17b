package main

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/casekeys"
)

// Events are sealed inside the transactions that write them, so a case's key is read or made
// while a work connection is held. With every work connection held that way, as under a
// burst, keys still come: from a pool of their own. Drawn from the work pool, each would wait
// for a connection only the waiting transactions could free, and the process would stop.
func TestCaseKeysComeWhileEveryWorkConnectionIsInATransaction(t *testing.T) {
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ip := startInProcessWith(t, newMigratedURL(t), func(c *serveConfig) { c.CaseKEK = kek })
	keys, ok := ip.sys.p.cipher.(*casekeys.Store)
	if !ok {
		t.Fatalf("the process seals with %T, want the case-key store", ip.sys.p.cipher)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holdEveryWorkConnection(t, ctx, ip.sys.p.pool)
	for range 2 * ip.sys.p.pool.Config().MaxConns { // more cases than connections, none of them cached
		kctx, kcancel := context.WithTimeout(ctx, 5*time.Second)
		key, err := keys.Key(kctx, uuid.NewString())
		kcancel()
		if err != nil || len(key) != 32 {
			t.Fatalf("a new case's key with every work connection in a transaction: %d bytes, %v", len(key), err)
		}
	}
}
