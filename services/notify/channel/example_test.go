package channel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mash-hub/mash/services/notify/channel"
)

// The receiving agency checks each webhook request in a few lines: read the raw body,
// verify the signature over timestamp and body, then deduplicate on Idempotency-Key
// (MASH retries, so the same notification can arrive more than once).
func ExampleVerifySignature() {
	secret := []byte("the-agency-secret-of-at-least-32-bytes") // shared out of band, per agency

	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = channel.VerifySignature(secret,
			r.Header.Get(channel.HeaderTimestamp), r.Header.Get(channel.HeaderSignature),
			body, time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(channel.HeaderIdempotencyKey)
		kind := r.Header.Get(channel.HeaderKind)
		// Store body under id unless id was seen before; answer 2xx only once it is stored.
		fmt.Println("accepted", kind, id)
		w.WriteHeader(http.StatusNoContent)
	})

	srv := httptest.NewServer(receiver)
	defer srv.Close()
	receipt, err := channel.NewWebhook(nil, nil).Send(context.Background(),
		channel.Endpoint{Kind: channel.KindWebhook, URL: srv.URL, Secret: secret},
		channel.Message{ID: "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", Kind: "notification", Body: []byte(`{}`)})
	fmt.Println(receipt.Detail, err)
	// Output:
	// accepted notification 6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f
	// HTTP 204 <nil>
}
