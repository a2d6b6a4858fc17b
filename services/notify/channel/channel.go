// Package channel holds the ways the notification service reaches an agency: a signed
// webhook, a NATS subject, or an email that carries only a reference and a secure link.
//
// Each channel is one Channel implementation in its own file; Set dispatches on
// Endpoint.Kind, so adding a channel is adding a file and passing it to NewSet.
//
// Every Send is idempotent on Message.ID from the receiver's point of view: the webhook
// sends it as Idempotency-Key, NATS as Nats-Msg-Id, email as the Message-ID. The caller
// retries errors that are not Permanent and may therefore deliver a message more than once.
package channel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"sort"
	"strings"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Endpoint kinds.
const (
	KindWebhook = "webhook"
	KindNATS    = "nats"
	KindEmail   = "email"
)

// SubjectPrefix is the only subject space the NATS channel publishes to: the MASH stream
// captures it, and agencies are granted subscribe rights on their own token only.
var SubjectPrefix = events.PatternPrefix(eventsv1.SubjectNotifyAny)

// MinSecretLen is the shortest webhook HMAC key accepted (256 bits, the size of SHA-256).
const MinSecretLen = 32

// Endpoint is how one agency is reached (from the agency directory).
type Endpoint struct {
	Kind    string // "webhook", "nats", "email"
	URL     string // webhook: https URL (http allowed only for loopback hosts, for tests/local)
	Subject string // nats: full subject, e.g. "mash.notify.south-wales-police"
	Address string // email: recipient address
	Secret  []byte // webhook: HMAC key (per agency)
}

// Message is one notification to deliver.
type Message struct {
	ID        string // notification id (UUID); sent as the idempotency key
	Agency    string
	Kind      string // "notification", "withdrawal", "escalation", "receipt", "outcome", "encompass"
	Reference string // the referral's human reference, e.g. MASH-2026-0000123
	Link      string // secure link to the record in the console (email carries only Reference + Link)
	Body      []byte // JSON document (webhook and nats); may contain personal data, so email never uses it
	// Notice, when set, is the whole text of an email in place of the standard "a
	// notification is waiting" lines, for messages about no record (a change to the agency's
	// own directory entry); Link is then optional. Lines must be printable ASCII.
	Notice []string
}

// Receipt is the channel's evidence that the agency side accepted the message, kept in the
// notification's delivery log: "HTTP 200", "stream MASH_AGENCY seq 42", "250 2.0.0 queued".
type Receipt struct {
	Detail string
	// Stream and Sequence say where a NATS message rests (the original's place when the
	// stream recognised a re-send), so that erasing its case can delete it; empty and 0 for
	// the other channels.
	Stream   string
	Sequence uint64
}

// Channel delivers a message to one endpoint. Send returns an error wrapped with Permanent
// when retrying cannot help; any other error is worth retrying later.
type Channel interface {
	Kind() string
	Send(ctx context.Context, ep Endpoint, m Message) (Receipt, error)
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (HTTP 400/401/403/404/410, a bad
// address, an invalid endpoint), so the caller dead-letters instead of retrying.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Set dispatches each Send to the channel for Endpoint.Kind.
type Set struct{ byKind map[string]Channel }

// NewSet returns a Set of chs. A nil channel or two channels of one kind is a wiring
// mistake, so it panics rather than silently dropping one.
func NewSet(chs ...Channel) *Set {
	s := &Set{byKind: make(map[string]Channel, len(chs))}
	for _, ch := range chs {
		if ch == nil {
			panic("channel.NewSet: nil channel")
		}
		if _, dup := s.byKind[ch.Kind()]; dup {
			panic(fmt.Sprintf("channel.NewSet: two channels of kind %q", ch.Kind()))
		}
		s.byKind[ch.Kind()] = ch
	}
	return s
}

// Send delivers m through the channel for ep.Kind. An unknown kind is permanent: the
// agency directory names a channel this service was not built or configured with.
func (s *Set) Send(ctx context.Context, ep Endpoint, m Message) (Receipt, error) {
	ch, ok := s.byKind[ep.Kind]
	if !ok {
		return Receipt{}, Permanent(fmt.Errorf("endpoint kind %q: no such channel (have %s)", ep.Kind, strings.Join(s.Kinds(), ", ")))
	}
	return ch.Send(ctx, ep, m)
}

// Kinds lists the kinds the set can send to, sorted.
func (s *Set) Kinds() []string {
	kinds := make([]string, 0, len(s.byKind))
	for k := range s.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// ValidateEndpoint checks ep is usable for its kind, so a bad directory entry is refused
// when it is saved rather than when a notification is due. The error names the field.
func ValidateEndpoint(ep Endpoint) error {
	switch ep.Kind {
	case KindWebhook:
		return validateWebhook(ep)
	case KindNATS:
		return validateSubject(ep.Subject)
	case KindEmail:
		_, err := parseAddress(ep.Address)
		return err
	case "":
		return errors.New("endpoint Kind is empty: want webhook, nats or email")
	}
	return fmt.Errorf("endpoint Kind %q: want webhook, nats or email", ep.Kind)
}

func validateWebhook(ep Endpoint) error {
	if _, err := CheckURL("endpoint URL", ep.URL); err != nil {
		return err
	}
	if len(ep.Secret) < MinSecretLen {
		return fmt.Errorf("endpoint Secret is %d bytes: want at least %d random bytes", len(ep.Secret), MinSecretLen)
	}
	return nil
}

// CheckURL parses raw as an absolute https URL, or http to a loopback host: plain http
// elsewhere would expose the signed body, and the link, to anyone on the path.
// field names the value in errors ("endpoint URL", "message Link").
func CheckURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%s %q: want an absolute URL with a host", field, raw)
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and error messages.
		return nil, fmt.Errorf("%s: must not contain a user name or password", field)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("%s: http is allowed only for loopback hosts, not %q: use https", field, u.Hostname())
	default:
		return nil, fmt.Errorf("%s: scheme %q: want https", field, u.Scheme)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateSubject accepts exactly mash.notify.<token>: one agency token, no wildcards, so
// a directory entry can never publish into another service's subjects.
func validateSubject(subject string) error {
	token, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return fmt.Errorf("endpoint Subject %q: want %s<agency>", subject, SubjectPrefix)
	}
	if token == "" {
		return fmt.Errorf("endpoint Subject %q: agency token is empty", subject)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return fmt.Errorf("endpoint Subject %q: agency token may not contain %q (want one token of printable ASCII without . * >)", subject, c)
		}
	}
	return nil
}

func parseAddress(raw string) (*mail.Address, error) {
	if raw == "" {
		return nil, errors.New("endpoint Address is empty")
	}
	a, err := mail.ParseAddress(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint Address %q: %w", raw, err)
	}
	return a, nil
}

// checkMessage checks the fields that end up in protocol headers, where a stray CR/LF
// would let one field forge others.
func checkMessage(m Message) error {
	if err := checkToken("ID", m.ID, 64, isIDChar); err != nil {
		return err
	}
	return checkToken("Kind", m.Kind, 32, isIDChar)
}

func checkToken(field, v string, maxLen int, ok func(byte) bool) error {
	if v == "" || len(v) > maxLen {
		return fmt.Errorf("message %s is %d bytes: want 1 to %d", field, len(v), maxLen)
	}
	for i := 0; i < len(v); i++ {
		if !ok(v[i]) {
			return fmt.Errorf("message %s %q: character %q not allowed", field, v, v[i])
		}
	}
	return nil
}

// isPrintable is printable ASCII without space, for values placed in mail headers.
func isPrintable(c byte) bool { return c > ' ' && c < 0x7f }

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// snippet makes up to maxSnippet bytes of untrusted text safe for an error message or
// log: valid UTF-8, no control characters (so no forged log lines).
func snippet(b []byte) string {
	const maxSnippet = 200
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxSnippet {
		cut := maxSnippet - len("...")
		for cut > 0 && (s[cut]&0xc0) == 0x80 { // do not split a rune
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
