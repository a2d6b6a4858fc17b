// Package db opens the Postgres pool every service shares and applies each service's
// embedded migrations into the schema it owns.
package db

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is used when DATABASE_URL is unset: the local Postgres that scripts/run starts.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/mash?sslmode=disable"

// Open connects a pool and checks the server answers. The pool holds four connections per
// core the process may use, at least 16: every request is one short transaction, so more
// would only queue in Postgres, but one process runs every service's consumers, relays and
// the audit sequencer beside the APIs, and each holds a connection while it works.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, func(cfg *pgxpool.Config) {
		if !strings.Contains(url, "pool_max_conns") {
			cfg.MaxConns = int32(defaultMaxConns())
		}
	})
}

// defaultMaxConns is Open's pool size: four connections per core the process may use, at
// least 16. The cores are GOMAXPROCS, which Go sets from a container's CPU limit, not the
// node's CPU count: a one-CPU pod on a 64-core node would otherwise open 256 connections,
// and a handful of pods would exhaust the server's max_connections.
func defaultMaxConns() int {
	return max(minWorkConns, workConnsPerCore*runtime.GOMAXPROCS(0))
}

// The pools' sizes. deploy/check weighs a pod's connections with the same numbers, and a
// test keeps the two the same.
const (
	minWorkConns     = 16
	workConnsPerCore = 4
	probeConns       = 1
)

// OpenProbe connects a pool of one connection, kept open, for readiness checks: a check
// through the pool the work uses would wait behind that work, and an instance that is busy,
// not broken, would be taken out of service just when it is needed.
func OpenProbe(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, func(cfg *pgxpool.Config) {
		cfg.MaxConns, cfg.MinConns = probeConns, probeConns
		cfg.ConnConfig.RuntimeParams["application_name"] = "mash-readiness"
	})
}

// keyConns is how many connections the case-key store's pool holds at most: a key is read
// or made in one short statement, once per case and process while it stays cached.
const keyConns = 4

// OpenKeys connects the case-key store's own pool. Keys are read and made while a
// transaction of the work pool is open (an event is sealed in the transaction that writes
// it): drawn from the work pool, a key would wait for a connection only those transactions
// can free, and under a burst every connection ends up held by a transaction waiting for a
// key, and the process stops.
func OpenKeys(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, func(cfg *pgxpool.Config) {
		cfg.MaxConns = keyConns
		cfg.ConnConfig.RuntimeParams["application_name"] = "mash-keys"
	})
}

func open(ctx context.Context, url string, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx errors may echo the URL with its password; say only what is wrong.
		return nil, fmt.Errorf("parse DATABASE_URL: invalid connection string")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	// Acceptance means committed to disk; never run with a weaker server default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "mash"
	}
	configure(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}
