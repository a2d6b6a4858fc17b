package main

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ingress-nginx annotations the Ingress policy reads.
const (
	annBackendProtocol = "nginx.ingress.kubernetes.io/backend-protocol"
	annForceSSL        = "nginx.ingress.kubernetes.io/force-ssl-redirect"
	annProxySSLSecret  = "nginx.ingress.kubernetes.io/proxy-ssl-secret"
	annProxySSLVerify  = "nginx.ingress.kubernetes.io/proxy-ssl-verify"
	annClusterIssuer   = "cert-manager.io/cluster-issuer"
	annIssuer          = "cert-manager.io/issuer"
)

// internalPaths are served by every mash listener for the cluster alone (probes, metrics,
// profiling); no Ingress path may reach them.
var internalPaths = []string{"/metrics", "/healthz", "/readyz", "/debug"}

// checkIngresses applies the Ingress policy: TLS for every host with a certificate from
// cert-manager, HTTP redirected to HTTPS, the pods reached over TLS (HTTPS to the http
// port, GRPCS with the controller's client certificate to the gRPC port, which requires
// mutual TLS), every backend an existing Service port, and no internal path published.
func (r *Report) checkIngresses() {
	services := map[string]*corev1.Service{} // namespace/name
	certs := map[string]*CMCertificate{}     // namespace/secretName
	for _, d := range r.Docs {
		switch o := d.Obj.(type) {
		case *corev1.Service:
			services[o.Namespace+"/"+o.Name] = o
		case *CMCertificate:
			certs[o.Namespace+"/"+o.Spec.SecretName] = o
		}
	}
	for _, d := range r.Docs {
		if ing, ok := d.Obj.(*networkingv1.Ingress); ok {
			r.checkIngress(d, ing, services, certs)
		}
	}
}

func (r *Report) checkIngress(d *Doc, ing *networkingv1.Ingress, services map[string]*corev1.Service, certs map[string]*CMCertificate) {
	ann := ing.Annotations
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName == "" {
		r.problem(d, "spec.ingressClassName", "required: name the controller whose annotations this Ingress uses")
	}
	if len(ing.Spec.TLS) == 0 {
		r.problem(d, "spec.tls", "required: mash is served over TLS only")
	}
	covered := map[string]bool{}
	for i, t := range ing.Spec.TLS {
		f := fmt.Sprintf("spec.tls[%d]", i)
		if t.SecretName == "" {
			r.problem(d, f+".secretName", "required")
		}
		if len(t.Hosts) == 0 {
			r.problem(d, f+".hosts", "required: the names the certificate covers")
		}
		for _, h := range t.Hosts {
			covered[h] = true
		}
		_, managed := certs[ing.Namespace+"/"+t.SecretName]
		if t.SecretName != "" && !managed && ann[annClusterIssuer] == "" && ann[annIssuer] == "" {
			r.problem(d, f+".secretName", "%s: no Certificate in the manifests keeps it and there is no %s or %s annotation: the certificate would never be issued or renewed",
				t.SecretName, annClusterIssuer, annIssuer)
		}
	}
	if ann[annForceSSL] != "true" {
		r.problem(d, "metadata.annotations", "%s must be \"true\": plain HTTP is redirected, never served", annForceSSL)
	}
	proto := ann[annBackendProtocol]
	if proto != "HTTPS" && proto != "GRPCS" {
		r.problem(d, "metadata.annotations", "%s is %q: must be HTTPS or GRPCS, the pods serve TLS only", annBackendProtocol, proto)
	}
	if ann[annProxySSLVerify] != "on" {
		r.problem(d, "metadata.annotations", "%s must be \"on\": the controller verifies the pods' certificates", annProxySSLVerify)
	}
	if s := ann[annProxySSLSecret]; s == "" {
		r.problem(d, "metadata.annotations", "%s is required: the pods' gRPC listeners require a client certificate, and it carries the CA that verifies the pods", annProxySSLSecret)
	} else if c, ok := certs[s]; !ok {
		r.problem(d, "metadata.annotations", "%s %s: no Certificate in the manifests keeps this Secret (namespace/name)", annProxySSLSecret, s)
	} else if !slices.Contains(c.Spec.Usages, "client auth") {
		r.problem(d, "metadata.annotations", "%s %s: the Certificate lacks the \"client auth\" usage", annProxySSLSecret, s)
	}
	if ing.Spec.DefaultBackend != nil {
		r.problem(d, "spec.defaultBackend", "not allowed: only the listed API paths are published")
	}
	for i, rule := range ing.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		if rule.Host == "" {
			r.problem(d, f+".host", "required: a rule without a host answers for every name")
		} else if !covered[rule.Host] {
			r.problem(d, f+".host", "%s is not in any spec.tls hosts: it would be served with the controller's default certificate", rule.Host)
		}
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			pf := fmt.Sprintf("%s.http.paths[%d]", f, j)
			if p.Path == "" || p.Path == "/" {
				r.problem(d, pf+".path", "%q publishes everything, including /metrics and /debug: list the API paths", p.Path)
			}
			for _, internal := range internalPaths {
				if p.Path == internal || strings.HasPrefix(p.Path, internal+"/") {
					r.problem(d, pf+".path", "%s is internal to the cluster and must not be published", p.Path)
				}
			}
			r.checkIngressBackend(d, pf+".backend", ing.Namespace, proto, p.Backend, services)
		}
	}
}

// checkIngressBackend requires an existing Service port matching the backend protocol.
func (r *Report) checkIngressBackend(d *Doc, f, ns, proto string, b networkingv1.IngressBackend, services map[string]*corev1.Service) {
	if b.Service == nil {
		r.problem(d, f+".service", "required: backends are mash Services")
		return
	}
	svc, ok := services[ns+"/"+b.Service.Name]
	if !ok {
		r.problem(d, f+".service.name", "Service %s/%s is not in the manifests", ns, b.Service.Name)
		return
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if (b.Service.Port.Name != "" && sp.Name == b.Service.Port.Name) || (b.Service.Port.Name == "" && sp.Port == b.Service.Port.Number) {
			port = sp
		}
	}
	if port == nil {
		r.problem(d, f+".service.port", "Service %s has no port %s", b.Service.Name, portLabel(b.Service.Port))
		return
	}
	want := map[string]string{"http": "HTTPS", "grpc": "GRPCS"}[port.Name]
	if want != "" && proto != "" && want != proto {
		r.problem(d, f+".service.port", "port %s of Service %s speaks %s, but the Ingress's %s is %s: put it in the other Ingress", port.Name, b.Service.Name, want, annBackendProtocol, proto)
	}
}

func portLabel(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(p.Number)
}
