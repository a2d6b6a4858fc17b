package events

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startBroker(t, t.TempDir()) // calls EnsureStreams once
	if err := EnsureStreams(ctx, b.js, StreamOptions{}); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	st, err := b.js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	if cfg.Retention != jetstream.LimitsPolicy {
		t.Errorf("Retention = %v, want Limits", cfg.Retention)
	}
	if cfg.Storage != jetstream.FileStorage {
		t.Errorf("Storage = %v, want File", cfg.Storage)
	}
	if cfg.Duplicates != 30*time.Minute || cfg.MaxAge != 14*24*time.Hour || cfg.Replicas != 1 {
		t.Errorf("Duplicates %s, MaxAge %s, Replicas %d; want 30m, 336h, 1", cfg.Duplicates, cfg.MaxAge, cfg.Replicas)
	}
	if !cfg.DenyDelete || !cfg.DenyPurge {
		t.Errorf("DenyDelete %v, DenyPurge %v; want both", cfg.DenyDelete, cfg.DenyPurge)
	}
	if !slices.Contains(cfg.Subjects, "mash.referral.>") || !slices.Contains(cfg.Subjects, "mash.case.>") || slices.Contains(cfg.Subjects, "mash.>") {
		t.Errorf("Subjects = %v, want the catalogue's event families", cfg.Subjects)
	}

	// The broker enforces what was declared.
	if _, err := b.js.Publish(ctx, "mash.referral.test-x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err == nil {
		t.Error("deleting a message succeeded despite DenyDelete")
	}
	if err := st.Purge(ctx); err == nil {
		t.Error("purge succeeded despite DenyPurge")
	}

	// Changed options are applied to the existing stream.
	if err := EnsureStreams(ctx, b.js, StreamOptions{Duplicates: time.Hour, MaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	info, err = st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != time.Hour || info.Config.MaxAge != 48*time.Hour {
		t.Errorf("after update: Duplicates %s, MaxAge %s", info.Config.Duplicates, info.Config.MaxAge)
	}
}

// The agency stream holds the agencies' channel and nothing else, and lets a message be
// deleted (an erased case's) but never the stream be purged; no event subject reaches it and
// no agency subject reaches the event stream (JetStream refuses overlapping streams).
func TestAgencyStreamAllowsDeletesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	st, err := b.js.Stream(ctx, AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	if cfg.DenyDelete || !cfg.DenyPurge || cfg.Retention != jetstream.LimitsPolicy || cfg.Storage != jetstream.FileStorage {
		t.Errorf("agency stream: DenyDelete %v, DenyPurge %v, Retention %v, Storage %v; want deletes, no purge, Limits, File",
			cfg.DenyDelete, cfg.DenyPurge, cfg.Retention, cfg.Storage)
	}
	if want := []string{"mash.notify.*", "mash.notify.*.ack", "mash.notify.*.answer"}; !slices.Equal(cfg.Subjects, want) {
		t.Errorf("agency stream subjects %v, want %v", cfg.Subjects, want)
	}
	for _, f := range EventSubjects() {
		if SubjectMatches(f, "mash.notify.x") || strings.HasPrefix(f, "mash.notify.") {
			t.Errorf("event stream subject %s overlaps the agencies' channel", f)
		}
	}
	ack, err := b.js.Publish(ctx, "mash.notify.south-wales-police", []byte(`{"m":1}`))
	if err != nil || ack.Stream != AgencyStreamName {
		t.Fatalf("agency message stored in %v (%v), want %s", ack, err, AgencyStreamName)
	}
	if ack, err := b.js.Publish(ctx, "mash.referral.test-x", []byte("x")); err != nil || ack.Stream != StreamName {
		t.Fatalf("event stored in %v (%v), want %s", ack, err, StreamName)
	}
	if err := st.SecureDeleteMsg(ctx, ack.Sequence); err != nil {
		t.Errorf("secure delete of an agency message: %v", err)
	}
	if _, err := st.GetMsg(ctx, ack.Sequence); err == nil {
		t.Error("the deleted agency message is still there")
	}
	if err := st.Purge(ctx); err == nil {
		t.Error("purge of the agency stream succeeded despite DenyPurge")
	}
}

// A deployment whose event stream still covers mash.> (before the agency stream existed) is
// updated in place at start: the stored events and agency messages stay, the event stream
// gives up the agencies' subjects, and new agency messages go to the agency stream.
func TestEnsureStreamsUpgradesTheWholeNamespaceStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: dir, ServerName: "test"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := ConnectEmbedded(s, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	old := StreamConfig(StreamSpec{Name: StreamName, Subjects: []string{"mash.>"}}, StreamOptions{})
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"mash.referral.received", "mash.notify.south-wales-police", "mash.case.closed"} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams over a mash.> stream: %v", err)
	}
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 || slices.Contains(info.Config.Subjects, "mash.>") {
		t.Errorf("after the upgrade the event stream holds %d messages on %v; want the 3 kept, without mash.>", info.State.Msgs, info.Config.Subjects)
	}
	if ack, err := js.Publish(ctx, "mash.notify.south-wales-police", []byte("y")); err != nil || ack.Stream != AgencyStreamName {
		t.Errorf("agency message after the upgrade stored in %v (%v), want %s", ack, err, AgencyStreamName)
	}
	if ack, err := js.Publish(ctx, "mash.referral.received", []byte("y")); err != nil || ack.Stream != StreamName || ack.Sequence != 4 {
		t.Errorf("event after the upgrade: %v (%v), want %s seq 4", ack, err, StreamName)
	}
}

func TestStreamOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts StreamOptions
		ok   bool
	}{
		{"defaults", StreamOptions{}, true},
		{"cluster", StreamOptions{Replicas: 3, Duplicates: time.Hour, MaxAge: 72 * time.Hour}, true},
		{"short dedupe window", StreamOptions{Duplicates: 5 * time.Minute}, false},
		{"max age below window", StreamOptions{Duplicates: time.Hour, MaxAge: 30 * time.Minute}, false},
		{"too many replicas", StreamOptions{Replicas: 7}, false},
	} {
		err := tc.opts.withDefaults().validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParseListen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		host   string
		port   int
		listen bool
		ok     bool
	}{
		{"", "", 0, false, true},
		{"127.0.0.1:-1", "", 0, false, true},
		{"127.0.0.1:0", "127.0.0.1", -1, true, true},
		{"127.0.0.1:4222", "127.0.0.1", 4222, true, true},
		{"4222", "", 0, false, false},
		{"h:99999", "", 0, false, false},
	} {
		host, port, listen, err := parseListen(tc.in)
		if (err == nil) != tc.ok || host != tc.host || port != tc.port || listen != tc.listen {
			t.Errorf("parseListen(%q) = %q, %d, %v, %v", tc.in, host, port, listen, err)
		}
	}
}

func TestStartEmbeddedSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir)
	jsc := b.s.JetStreamConfig()
	if jsc == nil || !jsc.SyncAlways || !strings.HasPrefix(jsc.StoreDir, dir) {
		t.Errorf("JetStream config %+v: want SyncAlways under %s", jsc, dir)
	}
	if b.s.Addr() != nil {
		t.Errorf("listening on %s without a Listen address", b.s.Addr())
	}
	if _, err := StartEmbedded(EmbeddedConfig{}, nil); err == nil {
		t.Error("started without a StoreDir")
	}
}

func TestStartEmbeddedBindFailure(t *testing.T) {
	t.Parallel()
	b := startBrokerListen(t, t.TempDir(), "127.0.0.1:0")
	taken := b.s.Addr().String()
	_, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Listen: taken}, testLogger(t))
	if err == nil {
		t.Fatal("second server on a taken address started")
	}
	if want := taken; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the address %s", err, want)
	}
}
