package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/console"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/rules"
	"github.com/mash-hub/mash/services/triage"
)

// A service is one capability of the hub: it owns a schema, registers its APIs and runs its
// workers. Services reach each other only over gRPC and NATS, so any subset can run in a
// process.
type service interface {
	Register(srv *server.Server)
	Run(ctx context.Context) error
}

// module describes how to migrate and build a service from the shared plumbing.
type module struct {
	migrate func(ctx context.Context, pool *pgxpool.Pool) error
	build   func(p *plumbing) (service, error)
	// bus is what the service may do on NATS; nil for a service that does not use it.
	bus *busauth.Role
	// relays names a schema, beside the service's own, whose outbox the service's processes
	// relay with its bus user.
	relays string
}

// modules lists the services this binary has.
var modules = map[string]module{
	"intake": {
		migrate: intake.Migrate,
		bus:     &intake.Bus,
		build: func(p *plumbing) (service, error) {
			return intake.New(intake.Deps{Pool: p.poolOf("intake"), JS: p.jsOf("intake"), Calendar: p.calendar, Log: p.log.Named("intake"), Events: p.eventMetrics,
				Reconcile: p.reconcile, Registry: p.registry, Now: p.now, Cipher: p.cipher, Probe: p.probeOf("intake")})
		},
	},
	"audit": {
		migrate: audit.Migrate,
		bus:     &audit.Bus,
		build: func(p *plumbing) (service, error) {
			return audit.New(audit.Deps{Pool: p.poolOf("audit"), JS: p.jsOf("audit"), Log: p.log.Named("audit"), Events: p.eventMetrics, Config: p.audit, Now: p.now, Cipher: p.cipher})
		},
	},
	"notify": {
		migrate: notify.Migrate,
		bus:     &notify.Bus,
		build: func(p *plumbing) (service, error) {
			return notify.New(notify.Deps{Pool: p.poolOf("notify"), JS: p.jsOf("notify"), Calendar: p.calendar, Log: p.log.Named("notify"), Events: p.eventMetrics,
				Registry: p.registry, Email: p.notify.SMTP, DirectoryFile: p.notify.DirectoryFile,
				Delivery: notify.DeliveryConfig{SendTimeout: p.notify.SendTimeout, InFlight: p.notify.InFlight}, Reconcile: p.reconcile, Now: p.now,
				SecretKey: p.notify.SecretKey, ChangeTTL: p.notify.ChangeTTL, Cipher: p.cipher, Probe: p.probeOf("notify")})
		},
	},
	"console": {
		migrate: console.Migrate,
		bus:     &console.Bus,
		// Sign-ins, and the credential and user changes of the mash command, wait in the auth
		// schema's outbox; the console's processes relay it (SKIP LOCKED shares it).
		relays: auth.Schema,
		build: func(p *plumbing) (service, error) {
			return console.New(console.Deps{Pool: p.poolOf("console"), Log: p.log.Named("console"), Peers: p.peers, Auth: p.auth, Now: p.now,
				SignIns:  console.NewTrailSignIns(p.poolOf("console"), p.log.Named("console")),
				Calendar: p.calendar, Config: p.console})
		},
	},
	"triage": {
		migrate: triage.Migrate,
		bus:     &triage.Bus,
		build: func(p *plumbing) (service, error) {
			return triage.New(triage.Deps{Pool: p.poolOf("triage"), JS: p.jsOf("triage"), Calendar: p.calendar, Log: p.log.Named("triage"), Events: p.eventMetrics,
				Reconcile: p.reconcile, Registry: p.registry, Now: p.now, Peers: p.peers, ClaimTimeout: p.claimTimeout, Cipher: p.cipher,
				Retention: p.retention, QualitySamplePercent: p.qaPercent, Staff: p.auth})
		},
	},
	"rules": {
		migrate: rules.Migrate,
		bus:     &rules.Bus,
		build: func(p *plumbing) (service, error) {
			return rules.New(rules.Deps{Pool: p.poolOf("rules"), JS: p.jsOf("rules"), Calendar: p.calendar, Log: p.log.Named("rules"), Events: p.eventMetrics,
				Reconcile: p.reconcile, Registry: p.registry, Now: p.now, Cipher: p.cipher})
		},
	},
}

// relayService runs a relay as a worker of the process; it serves no API.
type relayService struct{ *events.Relay }

func (relayService) Register(*server.Server) {}

func serviceNames() []string {
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func parseServices(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return serviceNames(), nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if _, ok := modules[name]; !ok {
			return nil, fmt.Errorf("MASH_SERVICES: unknown service %q; this build has: all, %s", name, strings.Join(serviceNames(), ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}
