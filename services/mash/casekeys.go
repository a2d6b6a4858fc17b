package main

import (
	"encoding/base64"
	"fmt"

	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/config"
)

// EnvCaseKEK names the key-encryption key that wraps every case's data key: base64 of 32
// random bytes, kept in the deployment's secret store (mash audit keygen prints one).
const EnvCaseKEK = "MASH_CASE_KEK"

// caseKEK reads the case key-encryption key. Without it events carry personal data in
// clear, which is allowed only while every API listens on loopback.
func caseKEK(lookup func(string) (string, bool), listens map[string]string) ([]byte, error) {
	v, ok := lookup(EnvCaseKEK)
	if !ok || v == "" {
		for env, addr := range listens {
			if config.Loopback(env, addr) != nil {
				return nil, fmt.Errorf("%s: required when %s (%s) is not a loopback address: without it referrals rest in clear in outbox rows, on JetStream and in dead letters; mash audit keygen makes one",
					EnvCaseKEK, env, addr)
			}
		}
		return nil, nil
	}
	kek, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(kek) != casekeys.KEKSize {
		return nil, fmt.Errorf("%s: must be base64 of %d random bytes (openssl rand -base64 32)", EnvCaseKEK, casekeys.KEKSize)
	}
	return kek, nil
}
