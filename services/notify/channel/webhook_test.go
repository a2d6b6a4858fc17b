package channel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// personal is a stand-in for personal data: it must never appear in an error or an email.
const personal = "Jane Doe, born 2014-03-01, 12 Acacia Avenue"

var testSecret = []byte("0123456789abcdef0123456789abcdef-agency")

func testMessage() Message {
	return Message{
		ID:        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		Agency:    "south-wales-police",
		Kind:      "notification",
		Reference: "MASH-2026-0000123",
		Link:      "https://console.mash.example/referrals/6f1c2d3e",
		Body:      []byte(`{"child":"` + personal + `"}`),
	}
}

func hook(url string) Endpoint { return Endpoint{Kind: KindWebhook, URL: url, Secret: testSecret} }

func TestWebhookSignsAndDelivers(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifySignature(testSecret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get(HeaderKind) != "notification" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		mu.Lock()
		keys = append(keys, r.Header.Get(HeaderIdempotencyKey))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	wh := NewWebhook(nil, func() time.Time { return now })
	m := testMessage()
	for range 2 { // a re-send carries the same key, so the receiver can drop it
		r, err := wh.Send(context.Background(), hook(srv.URL+"/mash"), m)
		if err != nil {
			t.Fatal(err)
		}
		if r.Detail != "HTTP 202" {
			t.Fatalf("receipt %q, want HTTP 202", r.Detail)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != m.ID || keys[1] != m.ID {
		t.Fatalf("idempotency keys %q, want %s twice", keys, m.ID)
	}
}

func TestWebhookRetryableThenDelivered(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			// A long, hostile response body: only a short, clean snippet may reach the error.
			_, _ = io.WriteString(w, "oops\r\nFAKE LOG LINE\x1b[31m"+strings.Repeat("x", 5000))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	wh := NewWebhook(nil, nil)

	_, err := wh.Send(context.Background(), hook(srv.URL), testMessage())
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("first send: %v, want a retryable HTTP 500", err)
	}
	if msg := err.Error(); len(msg) > 300 || strings.ContainsAny(msg, "\r\n\x1b") || strings.Contains(msg, personal) {
		t.Fatalf("error is not a short sanitized snippet (%d bytes): %q", len(msg), msg)
	}
	r, err := wh.Send(context.Background(), hook(srv.URL), testMessage())
	if err != nil || r.Detail != "HTTP 200" {
		t.Fatalf("second send: %q, %v", r.Detail, err)
	}
}

func TestWebhookStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		code      int
		permanent bool
	}{
		{400, true}, {401, true}, {403, true}, {404, true}, {410, true}, {422, true},
		{408, false}, {425, false}, {429, false}, {500, false}, {502, false}, {503, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
		}))
		_, err := NewWebhook(nil, nil).Send(context.Background(), hook(srv.URL), testMessage())
		srv.Close()
		if err == nil || IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), "HTTP "+strconv.Itoa(tc.code)) {
			t.Errorf("HTTP %d: err %v, permanent %v, want permanent %v", tc.code, err, IsPermanent(err), tc.permanent)
		}
	}
}

func TestWebhookTimeoutIsRetryableAndPrompt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for handlers

	wh := NewWebhook(&http.Client{Timeout: 200 * time.Millisecond}, nil)
	start := time.Now()
	_, err := wh.Send(context.Background(), hook(srv.URL), testMessage())
	if err == nil || IsPermanent(err) {
		t.Fatalf("err %v, want a retryable timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s, want about the 200ms client timeout", d)
	}
	if strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error repeats the full URL: %v", err)
	}

	// The caller's context is honoured too, with the default client.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = NewWebhook(nil, nil).Send(ctx, hook(srv.URL), testMessage())
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Fatalf("err %v, want context.DeadlineExceeded, retryable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s after the context ended", d)
	}
}

func TestWebhookRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal?x=1", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	// Even a client that would follow redirects must not.
	_, err := NewWebhook(&http.Client{}, nil).Send(context.Background(), hook(srv.URL), testMessage())
	if !IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("err %v, want permanent HTTP 307", err)
	}
	if leaked.Load() != 0 {
		t.Fatal("redirect was followed: the body reached another host")
	}
}

func TestWebhookRefusesBadInput(t *testing.T) {
	wh := NewWebhook(nil, nil)
	bad := testMessage()
	bad.Kind = "notification\r\nX-Forged: 1"
	notJSON := testMessage()
	notJSON.Body = []byte("not json")
	for name, tc := range map[string]struct {
		ep Endpoint
		m  Message
	}{
		"plain http":   {hook("http://agency.example/hook"), testMessage()},
		"short secret": {Endpoint{Kind: KindWebhook, URL: "https://agency.example/", Secret: []byte("short")}, testMessage()},
		"header CRLF":  {hook("https://agency.example/"), bad},
		"body":         {hook("https://agency.example/"), notJSON},
	} {
		if _, err := wh.Send(context.Background(), tc.ep, tc.m); !IsPermanent(err) {
			t.Errorf("%s: err %v, want permanent", name, err)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"reference":"MASH-2026-0000123"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(testSecret, ts, body)
	if !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 || sig != strings.ToLower(sig) {
		t.Fatalf("signature %q, want v1= and 64 lowercase hex digits", sig)
	}
	if err := VerifySignature(testSecret, ts, sig, body, now, time.Minute); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)
	for name, tc := range map[string]struct {
		secret   []byte
		ts, sig  string
		body     []byte
		want     error
		contains string
	}{
		"tampered body": {testSecret, ts, sig, []byte(`{"reference":"MASH-2026-0000124"}`), ErrSignatureMismatch, ""},
		"wrong secret":  {[]byte("another-agency-secret-of-32-bytes!!"), ts, sig, body, ErrSignatureMismatch, ""},
		"stale":         {testSecret, old, Sign(testSecret, old, body), body, ErrStaleTimestamp, "replay"},
		"future":        {testSecret, future, Sign(testSecret, future, body), body, ErrStaleTimestamp, ""},
		"other ts":      {testSecret, strconv.FormatInt(now.Unix()-1, 10), sig, body, ErrSignatureMismatch, ""},
		"no prefix":     {testSecret, ts, strings.TrimPrefix(sig, "v1="), body, ErrMalformedSignature, "v1="},
		"bad hex":       {testSecret, ts, "v1=zz" + sig[5:], body, ErrMalformedSignature, ""},
		"short":         {testSecret, ts, sig[:20], body, ErrMalformedSignature, ""},
		"empty":         {testSecret, ts, "", body, ErrMalformedSignature, ""},
		"bad timestamp": {testSecret, "yesterday", sig, body, ErrMalformedSignature, HeaderTimestamp},
	} {
		err := VerifySignature(tc.secret, tc.ts, tc.sig, tc.body, now, time.Minute)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: err %v, want %v containing %q", name, err, tc.want, tc.contains)
		}
	}
	if err := VerifySignature(nil, ts, sig, body, now, 0); err == nil {
		t.Error("empty secret accepted")
	}
}

// An agency sent to by many attempts at once keeps its connections between rounds: the
// second round of sends opens none, where a pool keeping fewer idle connections than the
// attempts in flight would open (and for TLS, handshake) one per attempt above it.
func TestWebhookKeepsAConnectionPerAttemptInFlight(t *testing.T) {
	const inFlight = 16
	var opened atomic.Int32
	var arrived sync.WaitGroup
	var release atomic.Pointer[chan struct{}]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		wait := *release.Load()
		arrived.Done()
		<-wait // every attempt of the round is in flight at once
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	wh := NewWebhook(nil, nil)
	for round := range 2 {
		arrived.Add(inFlight)
		gate := make(chan struct{})
		release.Store(&gate)
		errs := make(chan error, inFlight)
		for range inFlight {
			go func() {
				_, err := wh.Send(context.Background(), hook(srv.URL), testMessage())
				errs <- err
			}()
		}
		arrived.Wait()
		close(gate)
		for range inFlight {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if n := opened.Load(); n != inFlight {
			t.Fatalf("after round %d, %d connections opened; want %d, one per attempt in flight, kept for the next round", round, n, inFlight)
		}
	}
}
