package main

import "testing"

// Each Ingress rule fails the check, naming the Ingress and the field.
func TestIngressPolicy(t *testing.T) {
	for _, c := range []struct {
		name, old, new string
		want           []string
	}{
		{"no TLS", "  tls:\n    - hosts: [\"mash.example.org\"]\n      secretName: mash-public-http-tls\n", "",
			[]string{"Ingress mash/mash-http", "spec.tls", "TLS only"}},
		{"host outside the certificate", "    - host: grpc.mash.example.org\n", "    - host: other.example.org\n",
			[]string{"Ingress mash/mash-grpc", "spec.rules[0].host", "other.example.org is not in any spec.tls hosts"}},
		{"certificate never issued", "    cert-manager.io/cluster-issuer: mash-public\n    nginx.ingress.kubernetes.io/ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/backend-protocol: GRPCS\n",
			"    nginx.ingress.kubernetes.io/ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/backend-protocol: GRPCS\n",
			[]string{"Ingress mash/mash-grpc", "spec.tls[0].secretName", "never be issued"}},
		{"plain HTTP to the pods", "nginx.ingress.kubernetes.io/backend-protocol: HTTPS\n", "nginx.ingress.kubernetes.io/backend-protocol: HTTP\n",
			[]string{"Ingress mash/mash-http", "backend-protocol is \"HTTP\"", "TLS only"}},
		{"gRPC without the client certificate", "    nginx.ingress.kubernetes.io/backend-protocol: GRPCS\n    nginx.ingress.kubernetes.io/proxy-ssl-secret: mash/mash-ingress-client-tls\n",
			"    nginx.ingress.kubernetes.io/backend-protocol: GRPCS\n",
			[]string{"Ingress mash/mash-grpc", "proxy-ssl-secret is required"}},
		{"HTTP not redirected", "    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/backend-protocol: HTTPS\n",
			"    nginx.ingress.kubernetes.io/force-ssl-redirect: \"false\"\n    nginx.ingress.kubernetes.io/backend-protocol: HTTPS\n",
			[]string{"Ingress mash/mash-http", "force-ssl-redirect must be \"true\""}},
		{"metrics published", "          - path: /v1/audit\n", "          - path: /metrics\n",
			[]string{"Ingress mash/mash-http", "paths[6].path", "/metrics is internal"}},
		{"gRPC port behind the HTTPS Ingress", "          - path: /referrals\n            pathType: Prefix\n            backend:\n              service:\n                name: mash-console\n                port:\n                  name: http\n",
			"          - path: /referrals\n            pathType: Prefix\n            backend:\n              service:\n                name: mash-console\n                port:\n                  name: grpc\n",
			[]string{"Ingress mash/mash-http", "port grpc of Service mash-console speaks GRPCS"}},
		{"unknown Service", "          - path: /referrals\n            pathType: Prefix\n            backend:\n              service:\n                name: mash-console\n", "          - path: /referrals\n            pathType: Prefix\n            backend:\n              service:\n                name: mash-consol\n",
			[]string{"Ingress mash/mash-http", "Service mash/mash-consol is not in the manifests"}},
		{"unknown field", "  ingressClassName: nginx\n  tls:\n    - hosts: [\"grpc.mash.example.org\"]\n", "  ingressClassName: nginx\n  tlss: []\n  tls:\n    - hosts: [\"grpc.mash.example.org\"]\n",
			[]string{"Ingress mash/mash-grpc", "spec.tlss", "unknown field"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, "kubernetes/ingress.yaml", c.old, c.new)), c.want...)
		})
	}
}
