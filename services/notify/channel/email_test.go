package channel

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpServer is a minimal SMTP server on 127.0.0.1: enough of RFC 5321 for net/smtp.
type smtpServer struct {
	ln        net.Listener
	rcptReply string // reply to RCPT; "250 OK" unless set
	hang      bool   // never send the greeting

	mu   sync.Mutex
	msgs []string // DATA of each accepted message
	rcpt []string
}

func startSMTP(t *testing.T, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, rcptReply: "250 2.1.5 OK"}
	if configure != nil {
		configure(s)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(conn) })
		}
	})
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	say := func(line string) { _, _ = conn.Write([]byte(line + "\r\n")) }
	if s.hang {
		_, _ = r.ReadByte() // until the client closes or the deadline
		return
	}
	say("220 test.local ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-test.local")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "HELO"), strings.HasPrefix(cmd, "MAIL FROM:"),
			strings.HasPrefix(cmd, "RSET"), strings.HasPrefix(cmd, "NOOP"):
			say("250 OK")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.mu.Lock()
			s.rcpt = append(s.rcpt, strings.TrimSpace(line[len("RCPT TO:"):]))
			s.mu.Unlock()
			say(s.rcptReply)
		case cmd == "DATA":
			say("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			say("250 2.0.0 queued as T1")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 5.5.2 not implemented")
		}
	}
}

func newTestEmail(t *testing.T, addr string, mod func(*EmailConfig)) *Email {
	t.Helper()
	cfg := EmailConfig{Addr: addr, From: "MASH <no-reply@mash.example>", Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var mailbox = Endpoint{Kind: KindEmail, Address: "duty@agency.example"}

func TestEmailCarriesOnlyReferenceAndLink(t *testing.T) {
	srv := startSMTP(t, nil)
	e := newTestEmail(t, srv.addr(), nil)
	m := testMessage()

	r, err := e.Send(context.Background(), mailbox, m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Detail != "250 2.0.0 queued as T1" {
		t.Errorf("receipt %q", r.Detail)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages captured, want 1", len(msgs))
	}
	got := msgs[0]
	for _, want := range []string{
		"To: duty@agency.example\r\n",
		"Subject: MASH notification MASH-2026-0000123\r\n",
		"Message-ID: <" + m.ID + "@mash.example>\r\n",
		HeaderNotificationID + ": " + m.ID + "\r\n",
		"Date: ",
		m.Link, "sign in",
		// the same in Welsh, first
		"Mae hysbysiad diogelu gan yr MASH yn aros amdanoch.\r\n", "Cyfeirnod: MASH-2026-0000123\r\n", "Dolen:     " + m.Link + "\r\n",
		"Rhaid i chi fewngofnodi",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "Mae hysbysiad") > strings.Index(got, "A safeguarding notification") {
		t.Error("the Welsh text does not come first")
	}
	if strings.Contains(got, personal) || strings.Contains(got, "child") {
		t.Fatalf("message contains the body's personal data:\n%s", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.rcpt) != 1 || srv.rcpt[0] != "<duty@agency.example>" {
		t.Errorf("RCPT TO %q", srv.rcpt)
	}
}

func TestEmailReplyClasses(t *testing.T) {
	for reply, permanent := range map[string]bool{
		"550 5.1.1 no such mailbox":    true,
		"451 4.3.0 try again later":    false,
		"452 4.2.2 mailbox over quota": false,
	} {
		srv := startSMTP(t, func(s *smtpServer) { s.rcptReply = reply })
		_, err := newTestEmail(t, srv.addr(), nil).Send(context.Background(), mailbox, testMessage())
		if err == nil || IsPermanent(err) != permanent || !strings.Contains(err.Error(), reply[:3]) {
			t.Errorf("RCPT reply %q: err %v, want permanent %v", reply, err, permanent)
		}
		if len(srv.messages()) != 0 {
			t.Errorf("RCPT reply %q: message was still sent", reply)
		}
	}
}

func TestEmailRequireTLSWithoutSTARTTLS(t *testing.T) {
	srv := startSMTP(t, nil)
	e := newTestEmail(t, srv.addr(), func(c *EmailConfig) { c.RequireTLS = true })
	_, err := e.Send(context.Background(), mailbox, testMessage())
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err %v, want a retryable STARTTLS error", err)
	}
	if len(srv.messages()) != 0 {
		t.Fatal("message sent without TLS")
	}
}

func TestEmailConnectionErrorsAreRetryable(t *testing.T) {
	// Nothing listens on a closed listener's port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	_, err = newTestEmail(t, closed, nil).Send(context.Background(), mailbox, testMessage())
	if err == nil || IsPermanent(err) {
		t.Errorf("refused connection: err %v, want retryable", err)
	}

	// A server that never greets is cut off by the caller's context.
	srv := startSMTP(t, func(s *smtpServer) { s.hang = true })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = newTestEmail(t, srv.addr(), nil).Send(ctx, mailbox, testMessage())
	if err == nil || IsPermanent(err) || time.Since(start) > 2*time.Second {
		t.Errorf("silent server: err %v after %s, want retryable and prompt", err, time.Since(start))
	}
}

func TestEmailRefusesBadInput(t *testing.T) {
	e := newTestEmail(t, "127.0.0.1:1", nil)
	injected := testMessage()
	injected.Reference = "MASH-1\r\nBcc: someone@evil.example"
	insecure := testMessage()
	insecure.Link = "http://console.mash.example/r/1"
	for name, tc := range map[string]struct {
		ep Endpoint
		m  Message
	}{
		"bad address": {Endpoint{Kind: KindEmail, Address: "not an address"}, testMessage()},
		"header CRLF": {mailbox, injected},
		"http link":   {mailbox, insecure},
	} {
		if _, err := e.Send(context.Background(), tc.ep, tc.m); !IsPermanent(err) {
			t.Errorf("%s: err %v, want permanent", name, err)
		}
	}
	if _, err := NewEmail(EmailConfig{Addr: "smtp.example", From: "x@y.example"}); err == nil {
		t.Error("Addr without port accepted")
	}
	if _, err := NewEmail(EmailConfig{Addr: "smtp.example:25", From: "nobody"}); err == nil {
		t.Error("bad From accepted")
	}
}

// A notice about no record (an agency's changed directory entry) is the email's whole
// text, needs no link, and still carries nothing of the body.
func TestEmailNoticeReplacesTheStandardText(t *testing.T) {
	srv := startSMTP(t, nil)
	e := newTestEmail(t, srv.addr(), nil)
	m := testMessage()
	m.Kind, m.Reference, m.Link = "directory-change", "0192f000-0000-7000-8000-000000000001", ""
	m.Notice = []string{"Your organisation's entry in the MASH agency directory was changed.", "Change id: 0192f000-0000-7000-8000-000000000001"}
	if _, err := e.Send(context.Background(), mailbox, m); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()[0]
	if !strings.Contains(got, "Subject: MASH directory-change 0192f000-0000-7000-8000-000000000001\r\n") ||
		!strings.Contains(got, "\r\nYour organisation's entry in the MASH agency directory was changed.\r\nChange id: ") ||
		strings.Contains(got, "is waiting for you") || strings.Contains(got, personal) {
		t.Fatalf("notice email:\n%s", got)
	}
	m.Notice = []string{"bad\r\nBcc: someone@else.example"}
	if _, err := e.Send(context.Background(), mailbox, m); !IsPermanent(err) {
		t.Fatalf("a notice line with CR LF: %v", err)
	}
}
