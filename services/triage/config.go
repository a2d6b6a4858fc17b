package triage

import "time"

// Settings of the retention run triage owns (mash serve reads them as flags too).
const (
	// EnvRetentionDaily turns on the daily retention run: "true" erases, once a day, every
	// closed case its retention schedule says is due. Off by default.
	EnvRetentionDaily = "MASH_RETENTION_DAILY"
	// EnvRetentionFirstRun is how long after start the first daily run waits.
	EnvRetentionFirstRun = "MASH_RETENTION_FIRST_RUN"
)

// DefaultRetentionFirstRun is how long after start the first daily run waits: time for an
// operator to notice a misconfigured schedule before it erases anything, and no burst of
// runs from a process that restarts in a loop.
const DefaultRetentionFirstRun = time.Hour

// RetentionConfig is whether and when mash serve runs the retention schedule by itself.
type RetentionConfig struct {
	// Daily runs RunRetention once a day while the service runs. Off by default: erasure
	// is for good, so a partnership turns it on once its schedule is agreed.
	Daily bool
	// FirstRunAfter delays the first run after start. Default DefaultRetentionFirstRun.
	FirstRunAfter time.Duration
}
