package main

import (
	"fmt"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

type fault struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Error  string    `json:"error,omitempty"`
}

func (s *system) inject(kind string, rng *rand.Rand) fault {
	f := fault{At: time.Now().UTC(), Kind: kind}
	var err error
	switch kind {
	case "kill-service":
		p := s.services[rng.IntN(len(s.services))]
		f.Target = p.name
		p.signal(syscall.SIGKILL)
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		err = p.start()
	case "kill-broker", "kill-nats-node":
		n := s.nats[rng.IntN(len(s.nats))]
		f.Target = n.name
		n.signal(syscall.SIGKILL)
		time.Sleep(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
		err = n.start()
	case "postgres-immediate":
		f.Target = "postgres"
		if err = s.pgCtl("stop", "-D", s.c.pgData, "-m", "immediate"); err == nil {
			time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
			err = s.pgCtl("start", "-D", s.c.pgData, "-w", "-t", "60", "-l", filepath.Join(s.c.pgData, "..", "chaos-postgres.log"))
		}
	case "sigstop-consumer":
		var consumers []*proc
		for _, p := range s.services {
			if strings.HasPrefix(p.name, "rules") || strings.HasPrefix(p.name, "notify") || strings.HasPrefix(p.name, "audit") {
				consumers = append(consumers, p)
			}
		}
		p := consumers[rng.IntN(len(consumers))]
		f.Target = p.name
		p.signal(syscall.SIGSTOP)
		// Past the consumers' AckWait (30 s), so the broker redelivers to the others; the
		// schedule goes on meanwhile.
		time.AfterFunc(35*time.Second, func() { p.signal(syscall.SIGCONT) })
	case "lose-events":
		// The broker acknowledges and then loses events: one producer restarts with the
		// relay.lose failpoint armed for a few seconds (its relay marks events published
		// without sending them), then restarts clean. Only the reconciler can repair this.
		var producers []*proc
		for _, p := range s.services {
			if strings.HasPrefix(p.name, "intake") || strings.HasPrefix(p.name, "rules") {
				producers = append(producers, p)
			}
		}
		p := producers[rng.IntN(len(producers))]
		schema, _, _ := strings.Cut(p.name, "-")
		f.Target = p.name
		p.signal(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
		clean := p.env
		p.env = append(append([]string{}, clean...), "MASH_FAILPOINTS=relay.lose."+schema)
		if err = p.start(); err == nil {
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			p.signal(syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
			p.env = clean
			err = p.start()
		} else {
			p.env = clean
		}
	case "poison":
		f.Target = eventsv1.SubjectReferralReceived
		var nc *nats.Conn
		if nc, err = nats.Connect(s.natsURL, nats.Timeout(3*time.Second)); err == nil {
			err = nc.Publish(eventsv1.SubjectReferralReceived, []byte("not an envelope"))
			nc.Close()
		}
	default:
		err = fmt.Errorf("unknown fault %q", kind)
	}
	if err != nil {
		f.Error = err.Error()
	}
	return f
}
