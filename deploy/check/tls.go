package main

import (
	"net/url"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Names the TLS policy knows about mash and cert-manager.
const (
	// certManagerNamespace is where a ClusterIssuer reads its CA Secret (cert-manager's
	// cluster resource namespace).
	certManagerNamespace = "cert-manager"
	natsNamespace        = "nats"
	// natsAuthInclude is the key that includes the users file in the NATS configuration.
	natsAuthInclude = "$include"
	// natsConfigDir is where the chart mounts the NATS configuration.
	natsConfigDir = "/etc/nats-config"
)

// tlsEnv are the settings every mash Deployment needs for TLS and mutual TLS.
var tlsEnv = []string{"MASH_TLS_CERT", "MASH_TLS_KEY", "MASH_TLS_CA", "MASH_TLS_CLIENT_CA"}

// noBusComponents are the services that publish and consume no events: their processes
// connect to NATS only as the process's own user.
var noBusComponents = map[string]bool{"console": true}

// checkTLS applies the policy of governance section 4: every certificate is issued by an
// issuer in the manifests, every mash Deployment serves TLS with a certificate that names
// its Service and requires client certificates on gRPC, reaches NATS over TLS as its own
// users, and the NATS servers take TLS and no anonymous client.
func (r *Report) checkTLS() {
	certs := map[string]*CMCertificate{} // namespace/secretName -> certificate
	var certDocs, configMaps, services []*Doc
	var deployments []*Doc
	issuers := map[string]*CMIssuer{} // "ClusterIssuer/name" or "Issuer/ns/name"
	for _, d := range r.Docs {
		switch o := d.Obj.(type) {
		case *CMCertificate:
			certDocs = append(certDocs, d)
			certs[o.Namespace+"/"+o.Spec.SecretName] = o
		case *CMIssuer:
			if d.Kind == "ClusterIssuer" {
				issuers["ClusterIssuer/"+o.Name] = o
			} else {
				issuers["Issuer/"+o.Namespace+"/"+o.Name] = o
			}
		case *corev1.ConfigMap:
			configMaps = append(configMaps, d)
		case *corev1.Service:
			services = append(services, d)
		case *appsv1.Deployment:
			deployments = append(deployments, d)
		}
	}
	for _, d := range certDocs {
		r.checkCertificate(d, issuers)
	}
	for _, d := range r.Docs {
		if is, ok := d.Obj.(*CMIssuer); ok && is.Spec.CA != nil {
			ns := is.Namespace
			if d.Kind == "ClusterIssuer" {
				ns = certManagerNamespace
			}
			if c, ok := certs[ns+"/"+is.Spec.CA.SecretName]; !ok || !c.Spec.IsCA {
				r.problem(d, "spec.ca.secretName", "%s: no CA Certificate (isCA: true) in namespace %s keeps this Secret", is.Spec.CA.SecretName, ns)
			}
		}
	}
	for _, d := range configMaps {
		cm := d.Obj.(*corev1.ConfigMap)
		if u, ok := cm.Data["NATS_URL"]; ok {
			for _, one := range strings.Split(u, ",") {
				if p, err := url.Parse(strings.TrimSpace(one)); err != nil || p.Scheme != "tls" {
					r.problem(d, "data.NATS_URL", "%s: must be tls:// so events and passwords never cross the network in clear", strings.TrimSpace(one))
				}
			}
		}
	}
	for _, d := range deployments {
		dep := d.Obj.(*appsv1.Deployment)
		if dep.Spec.Template.Labels[labelName] != appName {
			continue
		}
		r.checkDeploymentTLS(d, dep, certs, configMaps, services)
	}
	if r.nats.checked {
		r.checkNATSSecurity(certs)
	}
}

// checkCertificate requires a resolvable issuer, a renewal before expiry, and for a leaf
// certificate a fresh key at each renewal and both server and client use.
func (r *Report) checkCertificate(d *Doc, issuers map[string]*CMIssuer) {
	c := d.Obj.(*CMCertificate)
	s := c.Spec
	if s.SecretName == "" {
		r.problem(d, "spec.secretName", "required")
	}
	ref := s.IssuerRef
	if ref.Group != "" && ref.Group != "cert-manager.io" {
		r.problem(d, "spec.issuerRef.group", "%q: mash's certificates come from cert-manager.io issuers", ref.Group)
	}
	key := "Issuer/" + c.Namespace + "/" + ref.Name
	if ref.Kind == "ClusterIssuer" {
		key = "ClusterIssuer/" + ref.Name
	}
	if _, ok := issuers[key]; !ok {
		r.problem(d, "spec.issuerRef", "%s %s is not in the manifests", strings.SplitN(key, "/", 2)[0], ref.Name)
	}
	if s.Duration == nil || s.RenewBefore == nil {
		r.problem(d, "spec.duration", "duration and renewBefore are required, so renewal is planned")
	} else if s.RenewBefore.Duration <= 0 || s.RenewBefore.Duration >= s.Duration.Duration {
		r.problem(d, "spec.renewBefore", "%s must be positive and shorter than duration %s", s.RenewBefore.Duration, s.Duration.Duration)
	}
	if s.IsCA {
		return
	}
	if s.PrivateKey == nil || s.PrivateKey.RotationPolicy != "Always" {
		r.problem(d, "spec.privateKey.rotationPolicy", "must be Always: a renewed certificate gets a new key")
	}
	for _, u := range []string{"server auth", "client auth"} {
		if !slices.Contains(s.Usages, u) {
			r.problem(d, "spec.usages", "missing %q: the certificate serves TLS and is the client certificate for mutual TLS", u)
		}
	}
}

// checkDeploymentTLS checks one mash Deployment's TLS and NATS credentials.
func (r *Report) checkDeploymentTLS(d *Doc, dep *appsv1.Deployment, certs map[string]*CMCertificate, configMaps, services []*Doc) {
	spec := &dep.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		return
	}
	c := &spec.Containers[0]
	cp := "spec.template.spec.containers[0]"
	env := envValues(c, configMaps)
	if strings.EqualFold(env["MASH_ALLOW_PLAINTEXT"], "true") {
		r.problem(d, cp+".env", "MASH_ALLOW_PLAINTEXT is true: mash must serve TLS in the cluster (governance section 4)")
	}
	for _, name := range tlsEnv {
		if env[name] == "" {
			r.problem(d, cp+".env", "%s is not set: every listener serves TLS and gRPC requires client certificates", name)
		}
	}
	if cert := env["MASH_TLS_CERT"]; cert != "" {
		r.checkCertMount(d, dep, c, cp, cert, certs, services)
	}
	for _, p := range []struct {
		field string
		probe *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if p.probe != nil && p.probe.HTTPGet != nil && p.probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			r.problem(d, cp+"."+p.field+".httpGet.scheme", "must be HTTPS: the HTTP listener serves TLS only")
		}
	}
	comp := dep.Spec.Template.Labels[labelComponent]
	want := []string{"MASH_NATS_PASSWORD_MASH"}
	if comp != "" && !noBusComponents[comp] {
		want = append(want, "MASH_NATS_PASSWORD_"+strings.ToUpper(strings.ReplaceAll(comp, "-", "_")))
	}
	for _, name := range want {
		found := false
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				found = true
			}
		}
		if !found {
			r.problem(d, cp+".env", "%s is not set from a Secret: the NATS servers refuse anonymous clients (mash bus users create --service)", name)
		}
	}
}

// checkCertMount requires MASH_TLS_CERT to be in a Secret volume that a Certificate keeps,
// and that Certificate to name the Service peers dial and the loopback address the process
// dials itself on.
func (r *Report) checkCertMount(d *Doc, dep *appsv1.Deployment, c *corev1.Container, cp, certFile string, certs map[string]*CMCertificate, services []*Doc) {
	dir := path.Dir(certFile)
	var secret string
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				secret = v.Secret.SecretName
			}
		}
	}
	if secret == "" {
		r.problem(d, cp+".volumeMounts", "MASH_TLS_CERT %s: no Secret volume is mounted at %s", certFile, dir)
		return
	}
	cert, ok := certs[dep.Namespace+"/"+secret]
	if !ok {
		r.problem(d, "spec.template.spec.volumes", "Secret %s is kept by no cert-manager Certificate in namespace %s", secret, dep.Namespace)
		return
	}
	for _, sd := range services {
		svc := sd.Obj.(*corev1.Service)
		if svc.Namespace != dep.Namespace || len(svc.Spec.Selector) == 0 ||
			!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
			continue
		}
		if !slices.Contains(cert.Spec.DNSNames, svc.Name) {
			r.problem(d, "spec.template.spec.volumes", "Certificate %s/%s does not name the Service %s in dnsNames: peers dial it by that name", cert.Namespace, cert.Name, svc.Name)
		}
	}
	if !slices.Contains(cert.Spec.IPAddresses, "127.0.0.1") {
		r.problem(d, "spec.template.spec.volumes", "Certificate %s/%s lacks ipAddresses 127.0.0.1: a process dials its own gRPC on loopback", cert.Namespace, cert.Name)
	}
}

// checkNATSSecurity requires TLS on client and route connections with a certificate the
// manifests issue, client certificates verified, and the users file included from a Secret.
func (r *Report) checkNATSSecurity(certs map[string]*CMCertificate) {
	d := r.nats.doc
	v, ok := d.Obj.(*natsChartValues)
	if !ok {
		return
	}
	for _, t := range []struct {
		field string
		tls   map[string]any
	}{{"config.nats.tls", v.Config.NATS.TLS}, {"config.cluster.tls", v.Config.Cluster.TLS}} {
		if on, _ := t.tls["enabled"].(bool); !on {
			r.problem(d, t.field+".enabled", "must be true: events and passwords must not cross the network in clear")
			continue
		}
		secret, _ := t.tls["secretName"].(string)
		if _, ok := certs[natsNamespace+"/"+secret]; !ok {
			r.problem(d, t.field+".secretName", "%q is kept by no cert-manager Certificate in namespace %s", secret, natsNamespace)
		}
		if ca, _ := t.tls["ca"].(string); ca == "" {
			r.problem(d, t.field+".ca", "required: with a CA the servers verify client certificates (mutual TLS)")
		}
	}
	for _, k := range []string{"authorization", "no_auth_user", "accounts"} {
		if _, ok := v.Config.Merge[k]; ok {
			r.problem(d, "config.merge."+k, "users come from `mash bus config` through the included file, never from the values (and never an anonymous user)")
		}
	}
	inc, _ := v.Config.Merge[natsAuthInclude].(string)
	if inc == "" {
		r.problem(d, "config.merge."+natsAuthInclude, "missing: the servers must include the users file `mash bus config` renders")
		return
	}
	mountDir := path.Dir(path.Join(natsConfigDir, inc))
	volume := ""
	for _, p := range v.Container.Patch {
		if m := patchValue(p, "/volumeMounts/-"); m != nil && m["mountPath"] == mountDir {
			volume, _ = m["name"].(string)
		}
	}
	if volume == "" {
		r.problem(d, "container.patch", "no volume is mounted at %s for the included %s", mountDir, inc)
		return
	}
	for _, p := range v.PodTemplate.Patch {
		if vol := patchValue(p, "/spec/volumes/-"); vol != nil && vol["name"] == volume {
			if sec, ok := vol["secret"].(map[string]any); ok && sec["secretName"] != "" {
				return
			}
			r.problem(d, "podTemplate.patch", "volume %s must come from a Secret: the users file holds password hashes", volume)
			return
		}
	}
	r.problem(d, "podTemplate.patch", "no volume %s is added to the pod for the included %s", volume, inc)
}

// patchValue returns the value of a JSON Patch "add" operation on path, or nil.
func patchValue(op any, target string) map[string]any {
	m, ok := op.(map[string]any)
	if !ok || m["op"] != "add" || m["path"] != target {
		return nil
	}
	v, _ := m["value"].(map[string]any)
	return v
}
