package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Environment variables the audit service reads.
const (
	EnvMasterKey          = "MASH_AUDIT_MASTER_KEY"          // base64 of 32 bytes; wraps every case key
	EnvSigningKey         = "MASH_AUDIT_SIGNING_KEY"         // note signer key from auditlog.GenerateKey
	EnvOrigin             = "MASH_AUDIT_ORIGIN"              // the log's checkpoint origin
	EnvCheckpointEvery    = "MASH_AUDIT_CHECKPOINT_EVERY"    // entries between checkpoints
	EnvCheckpointInterval = "MASH_AUDIT_CHECKPOINT_INTERVAL" // longest time new entries wait for one
	EnvBulkReadsPerHour   = "MASH_AUDIT_BULK_READS_PER_HOUR" // distinct children a reader may read in an hour before it is unusual
)

// Config defaults.
const (
	DefaultOrigin             = "mash/audit"
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultBatchSize          = 1000
	DefaultBulkReadsPerHour   = 60
)

// Config holds the audit service's secrets and tuning. Both keys live outside Postgres: a
// database dump alone can neither read a payload nor forge a checkpoint.
type Config struct {
	// MasterKey (32 bytes) wraps each case's data key with AES-256-GCM.
	MasterKey []byte
	// SigningKey is the Ed25519 note signer key ("PRIVATE+KEY+name+hash+data").
	SigningKey string
	// Origin names the log on every checkpoint. Default DefaultOrigin.
	Origin string
	// CheckpointEvery signs a checkpoint once this many entries were appended since the
	// last. Default 1000.
	CheckpointEvery int64
	// CheckpointInterval signs a checkpoint when entries have waited this long for one.
	// Default 10s.
	CheckpointInterval time.Duration
	// BatchSize is the most pending entries one sequencer transaction integrates. Default
	// 1000.
	BatchSize int
	// PollInterval is how often the sequencer looks for pending entries without a wake.
	// Default 1s.
	PollInterval time.Duration
	// BulkReadsPerHour is how many distinct children's records (single-record reads; list
	// pages are not counted) one reader may read in an hour before the unusual-access
	// report flags bulk reading. Default 60.
	BulkReadsPerHour int
}

// ConfigFromEnv reads Config from environment variables through lookup (os.LookupEnv).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var errs []error
	if v, ok := lookup(EnvMasterKey); ok {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			errs = append(errs, fmt.Errorf("%s: must be base64 of 32 random bytes (openssl rand -base64 32)", EnvMasterKey))
		}
		c.MasterKey = k
	}
	c.SigningKey, _ = lookup(EnvSigningKey)
	c.Origin, _ = lookup(EnvOrigin)
	if v, ok := lookup(EnvCheckpointEvery); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s %q: must be a positive whole number", EnvCheckpointEvery, v))
		}
		c.CheckpointEvery = n
	}
	if v, ok := lookup(EnvCheckpointInterval); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: must be a positive duration such as 10s", EnvCheckpointInterval, v))
		}
		c.CheckpointInterval = d
	}
	if v, ok := lookup(EnvBulkReadsPerHour); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s %q: must be a positive whole number", EnvBulkReadsPerHour, v))
		}
		c.BulkReadsPerHour = n
	}
	return c, errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Origin == "" {
		c.Origin = DefaultOrigin
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.BulkReadsPerHour == 0 {
		c.BulkReadsPerHour = DefaultBulkReadsPerHour
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if len(c.MasterKey) != 32 {
		errs = append(errs, fmt.Errorf("%s: the master key must be 32 bytes, got %d", EnvMasterKey, len(c.MasterKey)))
	}
	if c.SigningKey == "" {
		errs = append(errs, fmt.Errorf("%s is empty: generate a key pair with auditlog.GenerateKey and keep the private key outside the database", EnvSigningKey))
	}
	if c.CheckpointEvery < 1 || c.CheckpointInterval <= 0 || c.BatchSize < 1 || c.PollInterval <= 0 || c.BulkReadsPerHour < 1 {
		errs = append(errs, errors.New("CheckpointEvery, CheckpointInterval, BatchSize, PollInterval and BulkReadsPerHour must be positive"))
	}
	return errors.Join(errs...)
}
