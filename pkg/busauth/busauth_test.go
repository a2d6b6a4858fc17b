package busauth_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/testport"
	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tlsconf/tlsconftest"
)

// Two services as the services declare themselves: enough to prove one cannot act as the
// other.
var (
	intakeRole = busauth.Role{Service: "intake", Publishes: []string{"mash.referral.received"}, Durables: []string{"intake-status"}}
	rulesRole  = busauth.Role{Service: "rules", Publishes: []string{"mash.triage.decided"}, Durables: []string{"rules"}}
	notifyRole = busauth.Role{Service: "notify", Publishes: []string{"mash.notify.*"}, AgencyDurables: []string{"notify-acks"}, DeletesAgencyMessages: true}
)

type bus struct {
	addr  string
	srv   *server.Server
	users map[string]busauth.User
	store *busauth.Store
	auth  *busauth.Authenticator
}

func newStore(t *testing.T) *busauth.Store {
	t.Helper()
	migs, err := busauth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.NewPool(t, "bus_"+db.Checksum(migs), func(ctx context.Context, url string) error {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer p.Close()
		return busauth.Migrate(ctx, p)
	})
	return busauth.NewStore(pool, []busauth.Role{intakeRole, rulesRole, notifyRole})
}

// newBus starts an embedded server as mash serve does: in-memory users for the process and
// its services, stored ones for agencies and operators, and the stream declared.
func newBus(t *testing.T) *bus {
	t.Helper()
	users, err := busauth.ServiceUsers([]busauth.Role{intakeRole, rulesRole, notifyRole})
	if err != nil {
		t.Fatal(err)
	}
	b := &bus{addr: testport.Addr(t), users: map[string]busauth.User{}, store: newStore(t)}
	for _, u := range users {
		b.users[u.Name] = u
	}
	b.auth = busauth.NewAuthenticator(users, b.store, zap.NewNop())
	b.srv, err = events.StartEmbedded(events.EmbeddedConfig{StoreDir: t.TempDir(), Listen: b.addr, Auth: b.auth}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.srv.Shutdown(); b.srv.WaitForShutdown() })
	nc, _ := b.connect(t, b.users[busauth.PlumbingUser])
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatalf("the process's own user declares the stream: %v", err)
	}
	return b
}

// connect connects as u over TCP and returns the asynchronous errors the server sends it
// (permission violations arrive that way).
func (b *bus) connect(t *testing.T, u busauth.User) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc, err := nats.Connect("nats://"+b.addr, append(u.Options(), nats.Timeout(20*time.Second), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))...)
	if err != nil {
		t.Fatalf("connect as %s: %v", u.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// agency creates a stored agency user, as mash bus users create --agency does.
func (b *bus) agency(t *testing.T, id string) busauth.User {
	t.Helper()
	a, pw, err := b.store.Create(context.Background(), busauth.KindAgency, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	return busauth.User{Name: a.Name, Password: pw}
}

// subjectCount is how many messages the stream holds on subject, as the process sees it.
func (b *bus) subjectCount(t *testing.T, subject string) uint64 {
	t.Helper()
	nc, _ := b.connect(t, b.users[busauth.PlumbingUser])
	js, _ := jetstream.New(nc)
	stream := events.StreamName
	if strings.HasPrefix(subject, "mash.notify.") {
		stream = events.AgencyStreamName
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// violation waits for the server to refuse subject to this connection.
func violation(t *testing.T, errs <-chan error, what, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				if strings.Contains(err.Error(), subject) && strings.Contains(strings.ToLower(err.Error()), what) {
					return
				}
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s to %s", what, subject)
		}
	}
}

// publish publishes on subject through JetStream and reports whether the stream stored it.
func publish(ctx context.Context, nc *nats.Conn, subject string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = js.Publish(ctx, subject, []byte(`{}`))
	return err
}

func TestAnonymousAndUnknownClientsAreRefused(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	if nc, err := nats.Connect("nats://" + b.addr); err == nil || !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("anonymous client: %v, want an authorization violation", err)
	}
	// In process too: the services' own path into the server is no back door.
	if nc, err := events.ConnectEmbedded(b.srv, "anonymous", nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous in-process client accepted")
	}
	wrong := b.users["intake"]
	wrong.Password += "x"
	if nc, err := nats.Connect("nats://"+b.addr, wrong.Options()...); err == nil {
		nc.Close()
		t.Fatal("a service user with a wrong password was accepted")
	}
	a := b.agency(t, "south-wales-police")
	// A match is remembered, so reconnecting skips bcrypt; a wrong password still fails.
	ok, _ := b.connect(t, a)
	ok.Close()
	a.Password = "guess"
	if nc, err := nats.Connect("nats://"+b.addr, a.Options()...); err == nil {
		nc.Close()
		t.Fatal("an agency user with a wrong password was accepted")
	}
}

func TestServiceUserPublishesOnlyItsOwnEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBus(t)
	intake, errs := b.connect(t, b.users["intake"])
	if err := publish(ctx, intake, "mash.referral.received"); err != nil {
		t.Fatalf("intake publishes its own event: %v", err)
	}
	// Intake forging a threshold decision (rules' event) is refused by the server.
	if err := intake.Publish("mash.triage.decided", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	_ = intake.Flush()
	violation(t, errs, "publish", "mash.triage.decided")
	if n := b.subjectCount(t, "mash.triage.decided"); n != 0 {
		t.Fatalf("stream holds %d forged decisions", n)
	}
	// Nor may it act on an agency's subject.
	_ = intake.Publish("mash.notify.south-wales-police.ack", []byte(`{}`))
	_ = intake.Flush()
	violation(t, errs, "publish", "mash.notify.south-wales-police.ack")
	// Or listen to events directly, or take deliveries from another service's durable.
	if _, err := intake.SubscribeSync("mash.>"); err != nil {
		t.Fatal(err)
	}
	_ = intake.Flush()
	violation(t, errs, "subscription", "mash.>")
	rules, _ := b.connect(t, b.users["rules"])
	rjs, _ := jetstream.New(rules)
	if _, err := rjs.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{Durable: "rules",
		FilterSubject: "mash.referral.received", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("rules creates its own durable: %v", err)
	}
	ijs, _ := jetstream.New(intake)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := ijs.Consumer(cctx, events.StreamName, "rules"); err == nil {
		if _, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
			t.Fatal("intake read rules' durable")
		}
	}
	if _, err := ijs.CreateOrUpdateConsumer(cctx, events.StreamName, jetstream.ConsumerConfig{Durable: "rules",
		FilterSubject: "mash.>", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("intake redefined rules' durable to read everything")
	}
}

func TestAgencyUserIsConfinedToItsOwnSubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBus(t)
	police, errs := b.connect(t, b.agency(t, "south-wales-police"))
	b.agency(t, "rct-csc")
	notify, _ := b.connect(t, b.users["notify"])

	own, err := police.SubscribeSync("mash.notify.south-wales-police")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := police.SubscribeSync("mash.notify.rct-csc"); err != nil {
		t.Fatal(err)
	}
	_ = police.Flush()
	violation(t, errs, "subscription", "mash.notify.rct-csc")
	if err := publish(ctx, notify, "mash.notify.south-wales-police"); err != nil {
		t.Fatalf("notify sends to the police: %v", err)
	}
	if _, err := own.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("police did not receive its own message: %v", err)
	}

	// Publishing social care's acknowledgement is refused by the server; its own is stored.
	if err := police.Publish("mash.notify.rct-csc.ack", []byte(`{"notificationId":"x"}`)); err != nil {
		t.Fatal(err)
	}
	_ = police.Flush()
	violation(t, errs, "publish", "mash.notify.rct-csc.ack")
	if n := b.subjectCount(t, "mash.notify.rct-csc.ack"); n != 0 {
		t.Fatalf("stream holds %d acknowledgements forged for social care", n)
	}
	for _, subj := range []string{"mash.notify.south-wales-police.ack", "mash.notify.south-wales-police.answer"} {
		if err := publish(ctx, police, subj); err != nil {
			t.Fatalf("police publishes %s: %v", subj, err)
		}
	}
	// Nor may it publish events or forge what notify sends.
	_ = police.Publish("mash.notification.acknowledged", []byte(`{}`))
	_ = police.Flush()
	violation(t, errs, "publish", "mash.notification.acknowledged")

	// Its durable consumer may only be filtered on its own subject.
	pjs, _ := jetstream.New(police)
	cons, err := pjs.CreateOrUpdateConsumer(ctx, events.AgencyStreamName, jetstream.ConsumerConfig{Durable: busauth.AgencyDurable("south-wales-police"),
		FilterSubject: "mash.notify.south-wales-police", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatalf("police creates its durable: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if m.Subject() != "mash.notify.south-wales-police" {
			t.Fatalf("police's durable delivered %s", m.Subject())
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("police's durable delivered %d messages, want 1 (%v)", got, batch.Error())
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := pjs.CreateOrUpdateConsumer(cctx, events.AgencyStreamName, jetstream.ConsumerConfig{Durable: busauth.AgencyDurable("south-wales-police"),
		FilterSubject: "mash.notify.rct-csc", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("police made a durable over social care's subject")
	}

	// The agency stream allows deletes (erasure), but only notify's: an agency can neither
	// delete a message nor purge the stream.
	for _, api := range []string{"$JS.API.STREAM.MSG.DELETE." + events.AgencyStreamName, "$JS.API.STREAM.PURGE." + events.AgencyStreamName} {
		if _, err := police.Request(api, []byte(`{"seq":1}`), 2*time.Second); err == nil {
			t.Errorf("police's %s was answered", api)
		}
		violation(t, errs, "publish", api)
	}
	if n := b.subjectCount(t, "mash.notify.south-wales-police"); n != 1 {
		t.Fatalf("agency stream holds %d police messages, want 1", n)
	}
	njs, _ := jetstream.New(notify)
	st, err := njs.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatalf("notify looks up the agency stream: %v", err)
	}
	if err := st.SecureDeleteMsg(ctx, 1); err != nil {
		t.Fatalf("notify erases an agency message: %v", err)
	}
	if n := b.subjectCount(t, "mash.notify.south-wales-police"); n != 0 {
		t.Fatalf("agency stream holds %d police messages after notify deleted it", n)
	}
	if err := st.Purge(ctx); err == nil {
		t.Fatal("notify purged the agency stream")
	}
}

func TestRevokedAgencyIsRefused(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	u := b.agency(t, "south-wales-police")
	nc, _ := b.connect(t, u)
	nc.Close()
	if err := b.store.Revoke(context.Background(), u.Name, "test"); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect("nats://"+b.addr, u.Options()...); err == nil {
		nc.Close()
		t.Fatal("a revoked agency user was accepted")
	}
	// A connection made before the revocation is closed by the next sweep; others stay.
	closed := make(chan struct{})
	held, err := nats.Connect("nats://"+b.addr, append(b.agency(t, "rct-csc").Options(), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	own, _ := b.connect(t, b.users["intake"])
	if err := b.store.Revoke(context.Background(), "agency-rct-csc", "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.auth.Sweep(context.Background(), b.srv); err != nil || n != 1 {
		t.Fatalf("sweep closed %d connections (%v), want the revoked agency's", n, err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked agency's connection is still open")
	}
	if !own.IsConnected() {
		t.Fatal("the sweep closed a service's connection")
	}
	if _, _, err := b.store.Create(context.Background(), busauth.KindAgency, "south-wales-police", "test"); err != nil {
		t.Fatalf("a new user after revocation: %v", err)
	}
	if _, _, err := b.store.Create(context.Background(), busauth.KindAgency, "south-wales-police", "test"); !errors.Is(err, busauth.ErrExists) {
		t.Fatalf("a second active user of one name: %v", err)
	}
	if _, _, err := b.store.Create(context.Background(), busauth.KindAgency, "Bad Name", "test"); err == nil {
		t.Fatal("an agency id that is not a subject token was accepted")
	}
	if _, _, err := b.store.Create(context.Background(), busauth.KindService, "console", "test"); err == nil {
		t.Fatal("a service user for a service that does not use the bus was accepted")
	}
}

func TestOperatorCannotActForAnAgency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBus(t)
	a, pw, err := b.store.Create(ctx, busauth.KindOperator, "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	op, errs := b.connect(t, busauth.User{Name: a.Name, Password: pw})
	if err := publish(ctx, op, "mash.referral.received"); err != nil {
		t.Fatalf("operator replays an event: %v", err)
	}
	_ = op.Publish("mash.notify.south-wales-police.ack", []byte(`{}`))
	_ = op.Flush()
	violation(t, errs, "publish", "mash.notify.south-wales-police.ack")
}

// The block mash bus config prints loads in nats-server with every user's permissions.
func TestConfigLoadsInNATSServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for _, c := range [][2]string{{busauth.KindAgency, "south-wales-police"}, {busauth.KindService, "intake"}, {busauth.KindService, busauth.PlumbingUser}, {busauth.KindOperator, "alice"}} {
		if _, _, err := st.Create(ctx, c[0], c[1], "test"); err != nil {
			t.Fatal(err)
		}
	}
	users, err := st.Active(ctx)
	if err != nil || len(users) != 4 {
		t.Fatalf("active users: %d %v", len(users), err)
	}
	path := t.TempDir() + "/auth.conf"
	if err := writeFile(path, busauth.Config(users)); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects the rendered config: %v\n%s", err, busauth.Config(users))
	}
	got := map[string]*server.User{}
	for _, u := range opts.Users {
		got[u.Username] = u
	}
	for _, u := range users {
		su, ok := got[u.Name]
		if !ok {
			t.Fatalf("user %s missing from the rendered config", u.Name)
		}
		if !strings.HasPrefix(su.Password, "$2") {
			t.Fatalf("user %s has no bcrypt hash in the config", u.Name)
		}
		if strings.Join(su.Permissions.Publish.Allow, " ") != strings.Join(u.Permissions.Publish, " ") ||
			strings.Join(su.Permissions.Subscribe.Allow, " ") != strings.Join(u.Permissions.Subscribe, " ") {
			t.Fatalf("user %s: permissions differ after rendering:\n%+v\n%+v", u.Name, su.Permissions, u.Permissions)
		}
	}
	if a := got["agency-south-wales-police"]; a == nil || !contains(a.Permissions.Publish.Allow, "mash.notify.south-wales-police.ack") {
		t.Fatalf("agency permissions: %+v", a)
	}
	if op := got["operator-alice"]; op == nil || !contains(op.Permissions.Publish.Deny, "mash.notify.>") {
		t.Fatalf("operator permissions: %+v", op)
	}
}

// With certificates, the embedded server's listener takes TLS only; under mutual TLS a
// client must also show a certificate from the cluster's CA, and still authenticate.
func TestNATSOverMutualTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pki := tlsconftest.New(t)
	files := pki.Server
	files.ClientCA = pki.CA
	set, err := tlsconf.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	users, err := busauth.ServiceUsers([]busauth.Role{intakeRole})
	if err != nil {
		t.Fatal(err)
	}
	addr := testport.Addr(t)
	srv, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: t.TempDir(), Listen: addr, TLS: set.Server(),
		Auth: busauth.NewAuthenticator(users, nil, zap.NewNop())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	// In process, the services need no certificate.
	own, err := events.ConnectEmbedded(srv, "mash", users[0].Options()...)
	if err != nil {
		t.Fatalf("in-process connection with TLS on the listener: %v", err)
	}
	defer own.Close()
	ojs, _ := jetstream.New(own)
	if err := events.EnsureStreams(ctx, ojs, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}

	client, err := tlsconf.Load(pki.Client)
	if err != nil {
		t.Fatal(err)
	}
	intake := users[1]
	nc, err := events.Connect("tls://"+addr, "intake", append(intake.Options(), nats.Secure(client.Client()), nats.RetryOnFailedConnect(false))...)
	if err != nil {
		t.Fatalf("connect over mutual TLS: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Fatal("connection is not TLS")
	}
	if err := publish(ctx, nc, "mash.referral.received"); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}

	for name, opts := range map[string][]nats.Option{
		"plaintext":             intake.Options(),
		"no client certificate": append(intake.Options(), nats.Secure(&tls.Config{RootCAs: client.Client().RootCAs, MinVersion: tls.VersionTLS12})),
		"no user":               {nats.Secure(client.Client())},
	} {
		if nc, err := nats.Connect("nats://"+addr, append(opts, nats.Timeout(3*time.Second))...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		}
	}
}
