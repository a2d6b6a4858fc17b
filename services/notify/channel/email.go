package channel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// HeaderNotificationID carries Message.ID in the email, so the agency's mail team can
// quote it and a re-send is recognisable.
const HeaderNotificationID = "Mash-Notification-Id"

// defaultEmailTimeout bounds a whole SMTP session when EmailConfig.Timeout is zero.
const defaultEmailTimeout = 30 * time.Second

// EmailConfig is the SMTP relay the email channel submits through.
type EmailConfig struct {
	Addr               string // host:port of the relay
	From               string // sender address, e.g. "MASH <no-reply@mash.example>"
	Username, Password string // PLAIN auth; sent only over TLS or to a loopback relay
	Timeout            time.Duration
	RequireTLS         bool // fail when the relay does not offer STARTTLS
	// TLSConfig is optional, e.g. to trust a private CA; ServerName defaults to Addr's host.
	TLSConfig *tls.Config
}

// Email tells an agency by email that a notification is waiting. The email carries only
// the reference and a secure link, never Message.Body: mail is copied, forwarded and
// stored in places MASH does not control, so it must hold no personal data.
type Email struct {
	cfg  EmailConfig
	from *mail.Address
	host string
	now  func() time.Time
}

// NewEmail checks cfg and returns the email channel. Checking here, at start-up, turns a
// bad From or Addr into a refusal to start rather than a failure on every notification.
func NewEmail(cfg EmailConfig) (*Email, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email config Addr %q: want host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email config From %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultEmailTimeout
	}
	return &Email{cfg: cfg, from: from, host: host, now: time.Now}, nil
}

// Kind is "email".
func (e *Email) Kind() string { return KindEmail }

// Send submits the notice for m to ep.Address. A 5xx reply to RCPT or DATA (unknown
// mailbox, message refused) is Permanent; 4xx replies and connection errors are worth
// retrying. Failures earlier in the session (TLS, AUTH, MAIL FROM) are about the relay
// and its configuration, not this message, so they stay retryable until fixed.
func (e *Email) Send(ctx context.Context, ep Endpoint, m Message) (Receipt, error) {
	to, err := parseAddress(ep.Address)
	if err != nil {
		return Receipt{}, Permanent(fmt.Errorf("email: %w", err))
	}
	if err := e.checkMessage(m); err != nil {
		return Receipt{}, Permanent(fmt.Errorf("email: %w", err))
	}
	reply, err := e.deliver(ctx, to.Address, e.compose(to.Address, m))
	if err != nil {
		return Receipt{}, fmt.Errorf("email to %s via %s: %w", to.Address, e.cfg.Addr, err)
	}
	return Receipt{Detail: reply}, nil
}

func (e *Email) checkMessage(m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	if err := checkToken("Reference", m.Reference, 64, isPrintable); err != nil {
		return err
	}
	if len(m.Notice) > 0 {
		for _, line := range m.Notice {
			if len(line) > 900 || strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r > '~' }) {
				return errors.New("message Notice: lines must be printable ASCII of at most 900 bytes")
			}
		}
		if m.Link == "" {
			return nil
		}
	}
	// SMTP lines stop at 998 bytes; a link is a whole line of the body.
	if err := checkToken("Link", m.Link, 900, isPrintable); err != nil {
		return err
	}
	_, err := CheckURL("message Link", m.Link)
	return err
}

// compose builds the message. Every value in it has been checked to be printable ASCII,
// so no header can be forged and the body needs no encoding.
func (e *Email) compose(to string, m Message) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", e.from.String())
	header("To", to)
	header("Subject", "MASH "+m.Kind+" "+m.Reference)
	header("Date", e.now().Format(time.RFC1123Z))
	// The same notification id gives the same Message-ID, so a re-send threads with, or
	// is discarded as a duplicate of, the first.
	header("Message-ID", "<"+m.ID+"@"+e.from.Address[strings.LastIndexByte(e.from.Address, '@')+1:]+">")
	header(HeaderNotificationID, m.ID)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=us-ascii")
	header("Content-Transfer-Encoding", "7bit")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no out-of-office replies
	b.WriteString("\r\n")
	if len(m.Notice) > 0 {
		for _, line := range m.Notice {
			b.WriteString(line + "\r\n")
		}
		if m.Link != "" {
			b.WriteString("\r\nLink: " + m.Link + "\r\n")
		}
		return b.Bytes()
	}
	// Bilingual, Welsh first, as hubs in Wales write to agencies; both texts are plain
	// ASCII (the Welsh is worded to need no accented letters), so the body needs no
	// encoding and the link stays one line a person can copy.
	for _, line := range []string{
		"Mae hysbysiad diogelu gan yr MASH yn aros amdanoch.",
		"",
		"Cyfeirnod: " + m.Reference,
		"Math:      " + m.Kind,
		"Dolen:     " + m.Link,
		"",
		"Rhaid i chi fewngofnodi i gonsol yr MASH i'w weld. Nid yw'r e-bost hwn yn",
		"cynnwys unrhyw fanylion am yr atgyfeiriad; peidiwch ag anfon yr e-bost",
		"hwn ymlaen, a pheidiwch ag ateb gyda gwybodaeth bersonol.",
		"",
		"-----",
		"",
		"A safeguarding notification from the MASH is waiting for you.",
		"",
		"Reference: " + m.Reference,
		"Type:      " + m.Kind,
		"Link:      " + m.Link,
		"",
		"You must sign in to the MASH console to view it. This email contains no",
		"details of the referral; do not forward it or reply with personal",
		"information.",
	} {
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}

// deliver runs one SMTP session and returns the server's reply to the message data.
func (e *Email) deliver(ctx context.Context, to string, msg []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// net/smtp knows no context: a cancelled ctx ends a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return "", fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{}
		if e.cfg.TLSConfig != nil {
			cfg = e.cfg.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = e.host
		}
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		if err := c.StartTLS(cfg); err != nil {
			return "", fmt.Errorf("STARTTLS: %w", err)
		}
		secure = true
	} else if e.cfg.RequireTLS {
		return "", errors.New("relay does not offer STARTTLS and RequireTLS is set")
	}
	if e.cfg.Username != "" {
		if !secure && !isLoopback(e.host) {
			return "", errors.New("relay offers no STARTTLS: refusing to send the password in clear")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return "", errors.New("relay does not offer AUTH but a Username is set")
		}
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.host)); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return "", fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return "", replyErr("RCPT TO", err)
	}
	reply, err := data(c, msg)
	if err != nil {
		return "", replyErr("DATA", err)
	}
	_ = c.Quit() // the relay has taken the message; a failed QUIT changes nothing
	return reply, nil
}

// data is smtp.Client.Data plus the final reply text, which Data discards and which is
// the receipt ("250 2.0.0 queued as ...").
func data(c *smtp.Client, msg []byte) (string, error) {
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		return "", err
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		return "", err
	}
	w := c.Text.DotWriter()
	if _, err := w.Write(msg); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	code, text, err := c.Text.ReadResponse(250)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", code, snippet([]byte(text))), nil
}

// replyErr marks a 5xx reply to a message-specific command as permanent.
func replyErr(stage string, err error) error {
	err = fmt.Errorf("%s: %w", stage, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent(err)
	}
	return err
}
