package main

import "testing"

// Each TLS and bus rule of governance section 4 fails the check, naming what is wrong.
func TestTLSAndBusPolicy(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new string
		want                 []string
	}{
		{"client certificates not required", "kubernetes/config.yaml", "  MASH_TLS_CLIENT_CA: /etc/mash/tls/ca.crt\n", "",
			[]string{"Deployment mash/mash-rules", "MASH_TLS_CLIENT_CA is not set"}},
		{"plaintext allowed", "kubernetes/config.yaml", "  MASH_LOG_LEVEL: info\n", "  MASH_LOG_LEVEL: info\n  MASH_ALLOW_PLAINTEXT: \"true\"\n",
			[]string{"Deployment mash/mash-triage", "MASH_ALLOW_PLAINTEXT is true"}},
		{"NATS in clear", "kubernetes/config.yaml", "NATS_URL: tls://", "NATS_URL: nats://",
			[]string{"ConfigMap mash/mash-config", "data.NATS_URL", "must be tls://"}},
		{"probe over plain HTTP", "kubernetes/intake.yaml", "              scheme: HTTPS\n              path: /readyz", "              path: /readyz",
			[]string{"Deployment mash/mash-intake", "readinessProbe.httpGet.scheme", "HTTPS"}},
		{"service without its NATS password", "kubernetes/rules.yaml", "            - name: MASH_NATS_PASSWORD_RULES\n", "            - name: MASH_NATS_PASSWORD_RULE\n",
			[]string{"Deployment mash/mash-rules", "MASH_NATS_PASSWORD_RULES is not set from a Secret"}},
		{"certificate without the Service name", "kubernetes/certificates.yaml", "    - mash-notify\n", "",
			[]string{"Deployment mash/mash-notify", "does not name the Service mash-notify"}},
		{"certificate without client auth", "certs/nats.yaml", `usages: ["digital signature", "key encipherment", "server auth", "client auth"]`, `usages: ["digital signature", "key encipherment", "server auth"]`,
			[]string{"Certificate nats/nats-tls", "spec.usages", "client auth"}},
		{"unknown issuer", "certs/nats.yaml", "    name: mash-ca\n", "    name: mash-cq\n",
			[]string{"Certificate nats/nats-tls", "spec.issuerRef", "ClusterIssuer mash-cq is not in the manifests"}},
		{"CA issuer without its CA", "certs/ca.yaml", "    secretName: mash-ca\n", "    secretName: mash-ca-missing\n",
			[]string{"ClusterIssuer mash-ca", "spec.ca.secretName", "no CA Certificate"}},
		{"NATS clients in clear", "nats/values.yaml", "  nats:\n    tls:\n      enabled: true\n", "  nats:\n    tls:\n      enabled: false\n",
			[]string{"NATS Helm values", "config.nats.tls.enabled", "must be true"}},
		{"NATS without the users file", "nats/values.yaml", "    $include: auth/auth.conf\n", "    max_payload: 1048576\n",
			[]string{"NATS Helm values", "config.merge.$include", "missing"}},
		{"NATS with an anonymous user", "nats/values.yaml", "    $include: auth/auth.conf\n", "    $include: auth/auth.conf\n    no_auth_user: guest\n",
			[]string{"NATS Helm values", "config.merge.no_auth_user"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, c.file, c.old, c.new)), c.want...)
		})
	}
}
