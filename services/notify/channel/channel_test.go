package channel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recorder is a Channel that records what it was given.
type recorder struct {
	kind string
	got  []Endpoint
}

func (r *recorder) Kind() string { return r.kind }
func (r *recorder) Send(_ context.Context, ep Endpoint, _ Message) (Receipt, error) {
	r.got = append(r.got, ep)
	return Receipt{Detail: "ok " + r.kind}, nil
}

func TestSetDispatchesByKind(t *testing.T) {
	hook, mail := &recorder{kind: KindWebhook}, &recorder{kind: KindEmail}
	s := NewSet(mail, hook)
	if got := s.Kinds(); !slices.Equal(got, []string{"email", "webhook"}) {
		t.Fatalf("Kinds %q", got)
	}
	r, err := s.Send(context.Background(), Endpoint{Kind: KindEmail}, testMessage())
	if err != nil || r.Detail != "ok email" || len(mail.got) != 1 || len(hook.got) != 0 {
		t.Fatalf("send to email: %q, %v", r.Detail, err)
	}
	_, err = s.Send(context.Background(), Endpoint{Kind: "pigeon"}, testMessage())
	if !IsPermanent(err) || !strings.Contains(err.Error(), `"pigeon"`) {
		t.Fatalf("unknown kind: err %v, want permanent naming the kind", err)
	}
}

func TestNewSetRefusesDuplicateKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("two webhook channels accepted")
		}
	}()
	NewSet(&recorder{kind: KindWebhook}, &recorder{kind: KindWebhook})
}

func TestPermanent(t *testing.T) {
	base := errors.New("HTTP 404")
	err := fmt.Errorf("deliver: %w", Permanent(base))
	if !IsPermanent(err) || !errors.Is(err, base) || err.Error() != "deliver: HTTP 404" {
		t.Fatalf("wrapped permanent error: %v", err)
	}
	if IsPermanent(base) || IsPermanent(nil) || Permanent(nil) != nil {
		t.Fatal("plain or nil error reported permanent")
	}
}

func TestValidateEndpoint(t *testing.T) {
	secret := make([]byte, MinSecretLen)
	for _, tc := range []struct {
		name  string
		ep    Endpoint
		field string // "" means valid
	}{
		{"https webhook", Endpoint{Kind: "webhook", URL: "https://agency.example/mash", Secret: secret}, ""},
		{"loopback http", Endpoint{Kind: "webhook", URL: "http://127.0.0.1:8080/hook", Secret: secret}, ""},
		{"localhost http", Endpoint{Kind: "webhook", URL: "http://localhost/hook", Secret: secret}, ""},
		{"ipv6 loopback", Endpoint{Kind: "webhook", URL: "http://[::1]:9/hook", Secret: secret}, ""},
		{"remote http", Endpoint{Kind: "webhook", URL: "http://agency.example/hook", Secret: secret}, "URL"},
		{"ftp", Endpoint{Kind: "webhook", URL: "ftp://agency.example/", Secret: secret}, "URL"},
		{"relative", Endpoint{Kind: "webhook", URL: "/hook", Secret: secret}, "URL"},
		{"unparsable", Endpoint{Kind: "webhook", URL: "https://agency.example/%zz", Secret: secret}, "URL"},
		{"user info", Endpoint{Kind: "webhook", URL: "https://u:p@agency.example/", Secret: secret}, "URL"},
		{"short secret", Endpoint{Kind: "webhook", URL: "https://agency.example/", Secret: secret[:31]}, "Secret"},
		{"no secret", Endpoint{Kind: "webhook", URL: "https://agency.example/"}, "Secret"},
		{"nats", Endpoint{Kind: "nats", Subject: "mash.notify.south-wales-police"}, ""},
		{"nats other space", Endpoint{Kind: "nats", Subject: "mash.events.referral"}, "Subject"},
		{"nats empty token", Endpoint{Kind: "nats", Subject: "mash.notify."}, "Subject"},
		{"nats two tokens", Endpoint{Kind: "nats", Subject: "mash.notify.a.b"}, "Subject"},
		{"nats wildcard", Endpoint{Kind: "nats", Subject: "mash.notify.>"}, "Subject"},
		{"nats space", Endpoint{Kind: "nats", Subject: "mash.notify.a b"}, "Subject"},
		{"email", Endpoint{Kind: "email", Address: "duty@agency.example"}, ""},
		{"email named", Endpoint{Kind: "email", Address: "Duty Desk <duty@agency.example>"}, ""},
		{"email bad", Endpoint{Kind: "email", Address: "duty at agency"}, "Address"},
		{"email empty", Endpoint{Kind: "email"}, "Address"},
		{"no kind", Endpoint{}, "Kind"},
		{"unknown kind", Endpoint{Kind: "fax"}, "Kind"},
	} {
		err := ValidateEndpoint(tc.ep)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), "endpoint "+tc.field)):
			t.Errorf("%s: err %v, want one naming endpoint %s", tc.name, err, tc.field)
		}
	}
}
