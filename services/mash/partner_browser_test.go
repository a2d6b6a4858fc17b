package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/console/browsertest"
)

// smtpSink is a mail relay on loopback that keeps every message it is given, as the
// partnership's relay would pass them on to each agency's mailbox.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	mail []sunkMail
}

type sunkMail struct {
	to, subject, body string
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

// serve speaks just enough SMTP for one client session: no TLS, no auth.
func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	say("220 sink.test ESMTP")
	var to string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 sink.test")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			to = strings.Trim(strings.TrimSpace(line[len("RCPT TO:"):]), "<>")
			say("250 ok")
		case cmd == "DATA":
			say("354 go ahead")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(strings.TrimPrefix(l, "."))
			}
			head, body, _ := strings.Cut(msg.String(), "\r\n\r\n")
			subject := ""
			for _, h := range strings.Split(head, "\r\n") {
				if v, ok := strings.CutPrefix(h, "Subject: "); ok {
					subject = v
				}
			}
			s.mu.Lock()
			s.mail = append(s.mail, sunkMail{to: to, subject: subject, body: body})
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// to lists the messages to an address whose subject starts with prefix.
func (s *smtpSink) to(addr, prefix string) []sunkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sunkMail
	for _, m := range s.mail {
		if m.to == addr && strings.HasPrefix(m.subject, prefix) {
			out = append(out, m)
		}
	}
	return out
}

var emailLink = regexp.MustCompile(`Link: +(\S+)`)

// A partner agency without an API follows the link in its email to the console, signs in
// as its own staff, and acknowledges the notification, answers the hub's question and
// raises a disagreement, all in real Chromium against the real binary; the hub's team is
// told of the disagreement by email, and a hub manager sees it in the console.
func TestPartnerFollowsTheEmailLinkInBrowser(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	sink := newSMTPSink(t)
	dir := fmt.Sprintf(`partnerships:
  - id: rhondda-cynon-taf
    dutyManager: rct-duty-manager
    consoleUrl: http://%s
agencies:
  - {id: south-wales-police, partnership: rhondda-cynon-taf, name: SWP PPU, roles: [police], channel: email, email: ppu@police.test}
  - {id: rct-csc, partnership: rhondda-cynon-taf, name: CSC duty, roles: [childrens_social_care], channel: email, email: csc@council.test}
  - {id: rct-duty-manager, partnership: rhondda-cynon-taf, name: Duty manager, roles: [duty_manager], channel: email, email: duty@mash.test}
  - {id: rct-mash-team, partnership: rhondda-cynon-taf, name: MASH team, roles: [hub_team], channel: email, email: team@mash.test}
  - {id: rct-mash-managers, partnership: rhondda-cynon-taf, name: MASH team managers, roles: [hub_team_manager], channel: email, email: managers@mash.test}
`, s.httpAddr)
	dirFile := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	password := "correct horse battery staple"
	for _, u := range [][]string{
		{"--username", "pc.evans", "--name", "PC Evans", "--role", "partner", "--agency", "south-wales-police", "--kind", "police"},
		{"--username", "mgr.jones", "--name", "Morgan Jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf"},
	} {
		cmd := exec.Command(mashBinary, append(append([]string{"users", "create"}, u...), "--password-stdin")...)
		cmd.Env = s.env()
		cmd.Stdin = strings.NewReader(password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("users create %v: %v\n%s", u, err, out)
		}
	}
	referrer := s.credential(t, "south-wales-police")
	practitioner := func() string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}()
	s.start(t, "MASH_CONSOLE_INSECURE_COOKIES=true", "MASH_NOTIFY_DIRECTORY="+dirFile, "MASH_SMTP_ADDR="+sink.ln.Addr().String(),
		"MASH_SMTP_FROM=MASH <no-reply@mash.test>")

	// A referral with the family's consent, decided by a practitioner: police are told.
	var sub map[string]any
	if err := json.Unmarshal(example(t), &sub); err != nil {
		t.Fatal(err)
	}
	sub["consent"] = map[string]any{"status": "GIVEN"}
	body, _ := json.Marshal(sub)
	code, out, err := s.submit(referrer, body)
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, out, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.Unmarshal([]byte(out), &ack); err != nil {
		t.Fatal(err)
	}
	id := ack.ReferralID
	hub := apiCall{t, "http://" + s.httpAddr, practitioner}
	var version string
	waitUntil(t, "the referral in the queue", func() bool {
		_, c, _ := hub.do("GET", "/v1/cases/"+id, nil)
		version = str(c, "case", "version")
		return str(c, "case", "state") == "AWAITING_DECISION"
	})
	if code, _, raw := hub.do("POST", "/v1/cases/"+id+"/claim", map[string]any{}); code != 200 {
		t.Fatalf("claim: %d %s", code, raw)
	}
	_, c, _ := hub.do("GET", "/v1/cases/"+id, nil)
	version = str(c, "case", "version")
	if code, _, raw := hub.do("POST", "/v1/cases/"+id+"/decide", map[string]any{"expectedVersion": version, "level": "LEVEL_4", "rag": "RAG_RED",
		"agencies": []string{"police", "childrens_social_care"}, "reason": "Browser test: police and social care must act today."}); code != 200 {
		t.Fatalf("decide: %d %s", code, raw)
	}
	question := "Any call-outs to the address this year?"
	code, q, raw := hub.do("POST", "/v1/cases/"+id+"/information-requests", map[string]any{"agency": "south-wales-police", "question": question})
	if code != 200 {
		t.Fatalf("request information: %d %s", code, raw)
	}
	requestID := str(q, "request", "id")

	// The police's emails carry only the reference and the link.
	waitUntil(t, "the police's action and information request emails", func() bool {
		return len(sink.to("ppu@police.test", "MASH notification")) > 0 && len(sink.to("ppu@police.test", "MASH information-request")) > 0
	})
	mail := sink.to("ppu@police.test", "MASH notification")[0]
	m := emailLink.FindStringSubmatch(mail.body)
	if m == nil || m[1] != "http://"+s.httpAddr+"/referrals/"+id {
		t.Fatalf("the email's link: %q in\n%s", m, mail.body)
	}
	if strings.Contains(mail.body, "Evans") || strings.Contains(mail.body, question) {
		t.Fatalf("the email carries the record:\n%s", mail.body)
	}
	var notificationID string
	_, ns, _ := hub.do("GET", "/v1/notifications?referralId="+id+"&agency=south-wales-police", nil)
	for _, x := range anyList(ns["notifications"]) {
		if n := x.(map[string]any); str(n, "kind") == "ACTION" {
			notificationID = str(n, "id")
		}
	}
	if notificationID == "" {
		t.Fatalf("no action notification to the police: %v", ns)
	}

	artifacts := os.Getenv("MASH_ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = filepath.Join("..", "..", ".local", "artifacts")
	}
	reason := "We consider a strategy discussion is needed today: a fourth incident is likely."
	answer := "Two call-outs in October; no arrests."
	browsertest.RunPartner(t, "http://"+s.httpAddr, browsertest.PartnerVisit{Link: m[1], Username: "pc.evans", Password: password,
		NotificationID: notificationID, RequestID: requestID, Answer: answer, Disagreement: reason,
		Manager: "mgr.jones", ManagerPassword: password}, filepath.Join(artifacts, "browser"))

	// What the browser did is what the services recorded, in the partner's own name.
	_, n, raw := hub.do("GET", "/v1/notifications/"+notificationID, nil)
	if by := str(n, "notification", "acknowledgedBy"); by != "user:pc.evans" {
		t.Fatalf("acknowledged by %q: %s", by, raw)
	}
	_, rs, raw := hub.do("GET", "/v1/information-requests?referralId="+id, nil)
	answered := false
	for _, x := range anyList(rs["requests"]) {
		r := x.(map[string]any)
		answered = answered || (str(r, "id") == requestID && str(r, "answer") == answer && str(r, "answeredBy") == "user:pc.evans")
	}
	if !answered {
		t.Fatalf("the request's answer: %s", raw)
	}
	// Each read of a message the partner was sent is on the audit trail, in its name.
	pool := s.pool(t)
	waitUntil(t, "the partner's reads on the audit trail", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.entries
			WHERE event_type = 'mash.access.notification' AND referral_id = $1`, id).Scan(&n)
		return err == nil && n > 0
	})
	// The hub's team, owner of the disagreement's first stage, is told by email.
	waitUntil(t, "the hub's team told of the disagreement", func() bool {
		return len(sink.to("team@mash.test", "MASH disagreement")) == 1
	})
	if m := emailLink.FindStringSubmatch(sink.to("team@mash.test", "MASH disagreement")[0].body); m == nil || m[1] != "http://"+s.httpAddr+"/referrals/"+id {
		t.Fatalf("the team's email link: %q", m)
	}
	// The practitioner stage answers and the disagreement goes on: the team managers, owners
	// of the next stage, are told; the team is not told again.
	_, ds, raw := hub.do("GET", "/v1/disagreements?referralId="+id, nil)
	list := anyList(ds["disagreements"])
	if len(list) != 1 {
		t.Fatalf("disagreements: %s", raw)
	}
	d := list[0].(map[string]any)
	if code, _, raw := hub.do("POST", "/v1/disagreements/"+str(d, "id")+"/escalate", map[string]any{"expectedVersion": str(d, "version"),
		"outcome": "The practitioner kept level 4 without a strategy discussion today."}); code != 200 {
		t.Fatalf("escalate: %d %s", code, raw)
	}
	waitUntil(t, "the team managers told of the escalation", func() bool {
		return len(sink.to("managers@mash.test", "MASH disagreement")) == 1
	})
	if n := len(sink.to("team@mash.test", "MASH disagreement")); n != 1 {
		t.Fatalf("the team was told %d times", n)
	}
}

// mash users create makes a partner only of a named partner agency, of its kind.
func TestUsersCreatePartner(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "partner"}, "--agency"},
		{[]string{"--role", "partner", "--agency", "south-wales-police"}, "kind"},
		{[]string{"--role", "partner", "--agency", "south-wales-police", "--kind", "constabulary"}, "kind"},
		{[]string{"--role", "manager", "--agency", "south-wales-police", "--kind", "police"}, "partner role"},
	} {
		_, errOut, code := s.run(t, append([]string{"users", "create", "--username", "pc.bad", "--name", "PC Bad"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("users create %v: exit %d, %q; want a refusal naming %s", c.args, code, errOut, c.want)
		}
	}
	out, errOut, code := s.run(t, "users", "create", "--username", "pc.good", "--name", "PC Good", "--role", "partner",
		"--agency", "south-wales-police", "--kind", "police")
	if code != 0 || strings.TrimSpace(out) == "" || !strings.Contains(errOut, "created partner user pc.good of south-wales-police") {
		t.Fatalf("users create partner: exit %d, %q %q", code, out, errOut)
	}
}
