package eventstest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/events"
)

// JetStream starts an embedded JetStream server in a temporary directory, connects to it in
// process and declares the mash streams, as mash serve does. The server and connection stop
// when the test ends; name labels the connection.
func JetStream(t testing.TB, name string) jetstream.JetStream {
	t.Helper()
	ns, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := events.ConnectEmbedded(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return js
}
