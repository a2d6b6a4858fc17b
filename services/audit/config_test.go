package audit_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mash-hub/mash/services/audit"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"ok", map[string]string{audit.EnvMasterKey: key, audit.EnvSigningKey: "PRIVATE+KEY+x", audit.EnvCheckpointEvery: "50", audit.EnvCheckpointInterval: "5s"}, ""},
		{"short master key", map[string]string{audit.EnvMasterKey: base64.StdEncoding.EncodeToString(make([]byte, 16))}, audit.EnvMasterKey},
		{"not base64", map[string]string{audit.EnvMasterKey: "%%%"}, audit.EnvMasterKey},
		{"bad every", map[string]string{audit.EnvCheckpointEvery: "0"}, audit.EnvCheckpointEvery},
		{"bad interval", map[string]string{audit.EnvCheckpointInterval: "soon"}, audit.EnvCheckpointInterval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := audit.ConfigFromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			case tc.wantErr == "" && (len(c.MasterKey) != 32 || c.CheckpointEvery != 50):
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestNewRejectsMissingKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := audit.New(audit.Deps{Pool: e.pool, JS: e.js, Log: zapNop(), Config: audit.Config{}})
	if err == nil || !strings.Contains(err.Error(), audit.EnvMasterKey) || !strings.Contains(err.Error(), audit.EnvSigningKey) {
		t.Fatalf("New without keys: %v", err)
	}
}
