package channel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook request headers. The receiver verifies HeaderSignature over HeaderTimestamp and
// the body with VerifySignature, and deduplicates on HeaderIdempotencyKey.
const (
	HeaderTimestamp      = "Mash-Timestamp"
	HeaderSignature      = "Mash-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderKind           = "Mash-Notification-Kind"
)

// DefaultTolerance is the replay window VerifySignature uses when given none. It covers
// ordinary clock skew; a captured request replayed later than this is refused.
const DefaultTolerance = 5 * time.Minute

// signaturePrefix versions the scheme so it can change without ambiguity.
const signaturePrefix = "v1="

// Errors from VerifySignature, for errors.Is.
var (
	ErrMalformedSignature = errors.New("malformed webhook signature")
	ErrStaleTimestamp     = errors.New("webhook timestamp outside tolerance")
	ErrSignatureMismatch  = errors.New("webhook signature does not match")
)

// Webhook POSTs the message body, signed with the agency's secret, to its URL.
type Webhook struct {
	client *http.Client
	now    func() time.Time
}

// MaxConcurrency is the most attempts in flight to one endpoint: the directory allows no
// agency more.
const MaxConcurrency = 64

// NewWebhook returns the webhook channel. A nil client gets a 10 s overall timeout; a nil
// now is time.Now. Redirects are never followed, whatever client is given: following one
// would send personal data to a host the directory does not name.
func NewWebhook(client *http.Client, now func() time.Time) *Webhook {
	if client == nil {
		client = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: 10 * time.Second,
				ForceAttemptHTTP2:     true,
				// As many idle connections as an agency may have attempts in flight: with
				// fewer, every round of sends above them opens (and for TLS, handshakes)
				// connections only to close them after one message.
				MaxIdleConnsPerHost: MaxConcurrency,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	c := *client // copy: do not change the caller's client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if now == nil {
		now = time.Now
	}
	return &Webhook{client: &c, now: now}
}

// Kind is "webhook".
func (w *Webhook) Kind() string { return KindWebhook }

// Send POSTs m.Body to ep.URL. 2xx is delivered; 408, 425, 429, 5xx and network errors
// are worth retrying; any other status (3xx included) is Permanent.
func (w *Webhook) Send(ctx context.Context, ep Endpoint, m Message) (Receipt, error) {
	if err := validateWebhook(ep); err != nil {
		return Receipt{}, Permanent(fmt.Errorf("webhook: %w", err))
	}
	if err := checkMessage(m); err != nil {
		return Receipt{}, Permanent(fmt.Errorf("webhook: %w", err))
	}
	if !json.Valid(m.Body) {
		return Receipt{}, Permanent(fmt.Errorf("webhook: message %s body is not valid JSON", m.ID))
	}
	u, _ := url.Parse(ep.URL) // validated above
	host := u.Host            // never the path or query: they may carry tokens

	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Receipt{}, Permanent(fmt.Errorf("webhook %s: %w", host, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mash-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(ep.Secret, ts, m.Body))
	req.Header.Set(HeaderIdempotencyKey, m.ID)
	req.Header.Set(HeaderKind, m.Kind)

	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error repeats the full URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Receipt{}, fmt.Errorf("webhook %s: %w", host, err)
	}
	defer func() {
		// Drain a little so the connection can be reused, but never read an endless body.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return Receipt{Detail: fmt.Sprintf("HTTP %d", code)}, nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err = fmt.Errorf("webhook %s: HTTP %d", host, code)
	if s := snippet(head); s != "" {
		err = fmt.Errorf("%w: %q", err, s)
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		return Receipt{}, err
	case code >= 300 && code < 400:
		return Receipt{}, Permanent(fmt.Errorf("%w (redirect to %q not followed: update the agency's URL)", err, redirectHost(resp)))
	}
	return Receipt{}, Permanent(err)
}

// redirectHost names where a redirect pointed, without path or query.
func redirectHost(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return loc.Scheme + "://" + loc.Host
}

// Sign returns the Mash-Signature value for body sent at timestamp:
// "v1=" + lowercase hex HMAC-SHA256(secret, timestamp + "." + body).
// The timestamp is inside the MAC so an old request cannot be replayed with a new one.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature is the receiver's check of a webhook request: timestamp and signature
// are the Mash-Timestamp and Mash-Signature headers, body the raw request body. It
// refuses a timestamp more than tolerance from now (DefaultTolerance if tolerance <= 0)
// so a captured request cannot be replayed, and compares in constant time.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("verify webhook signature: secret is empty")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrMalformedSignature, HeaderTimestamp, snippet([]byte(timestamp)))
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %s is %s from now, tolerance %s (replayed request or clock skew)",
			ErrStaleTimestamp, HeaderTimestamp, skew.Round(time.Second), tolerance)
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: %s must start with %q", ErrMalformedSignature, HeaderSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s must be %q and %d hex digits", ErrMalformedSignature, HeaderSignature, signaturePrefix, 2*sha256.Size)
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return fmt.Errorf("%w: wrong secret, or body or timestamp changed in transit", ErrSignatureMismatch)
	}
	return nil
}
