package main

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Names the policy knows about mash.
const (
	labelName       = "app.kubernetes.io/name"
	labelComponent  = "app.kubernetes.io/component"
	appName         = "mash"
	healthzPath     = "/healthz"
	readyzPath      = "/readyz"
	cnpgAppSuffix   = "-app" // CloudNativePG's application-user Secret: <cluster>-app
	cnpgURIKey      = "uri"
	natsReplicasEnv = "MASH_NATS_REPLICAS"
)

// secretEnv matches environment variables that hold secrets: they must come from a
// Secret (secretKeyRef), never a literal value or a ConfigMap. A service's own login URL
// (MASH_<SERVICE>_DATABASE_URL) carries its password, since PGPASSWORD serves one login.
var secretEnv = regexp.MustCompile(`^(DATABASE_URL|MASH_[A-Z]+_DATABASE_URL|MASH_AUDIT_MASTER_KEY|MASH_AUDIT_SIGNING_KEY|.*(PASSWORD|SECRET|TOKEN|PRIVATE_KEY|_KEY))$`)

// publicEnv are names secretEnv would match that hold no secret.
// MASH_TLS_KEY names the file of a key mounted from a Secret, not the key itself.
var publicEnv = map[string]bool{"MASH_AUDIT_VERIFY_KEY": true, "MASH_TLS_KEY": true}

func isSecretEnv(name string) bool { return secretEnv.MatchString(name) && !publicEnv[name] }

// workload is a Deployment or Job with its pod template.
type workload struct {
	doc  *Doc
	tmpl *corev1.PodTemplateSpec
	base string // JSON path of the pod template
}

// checkPolicy applies mash's deployment policy across the decoded objects.
func (r *Report) checkPolicy() {
	var deployments, jobs, statefulSets []workload
	var services, pdbs, policies, configMaps, clusters, serviceAccounts []*Doc
	for _, d := range r.Docs {
		switch o := d.Obj.(type) {
		case *appsv1.Deployment:
			deployments = append(deployments, workload{d, &o.Spec.Template, "spec.template"})
		case *batchv1.Job:
			jobs = append(jobs, workload{d, &o.Spec.Template, "spec.template"})
		case *appsv1.StatefulSet:
			statefulSets = append(statefulSets, workload{d, &o.Spec.Template, "spec.template"})
		case *batchv1.CronJob:
			jobs = append(jobs, workload{d, &o.Spec.JobTemplate.Spec.Template, "spec.jobTemplate.spec.template"})
		case *corev1.Service:
			services = append(services, d)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, d)
		case *networkingv1.NetworkPolicy:
			policies = append(policies, d)
		case *corev1.ConfigMap:
			configMaps = append(configMaps, d)
		case *CNPGCluster:
			clusters = append(clusters, d)
		case *corev1.ServiceAccount:
			serviceAccounts = append(serviceAccounts, d)
		}
	}
	for _, d := range configMaps {
		r.checkConfigMap(d)
	}
	for _, d := range clusters {
		r.checkCluster(d)
	}
	for _, w := range deployments {
		r.checkDeployment(w, services, pdbs, configMaps)
	}
	for _, w := range jobs {
		r.checkPod(w, false, configMaps)
	}
	for _, w := range append(slices.Clone(deployments), jobs...) {
		r.checkSecretRefs(w, clusters)
	}
	for _, d := range serviceAccounts {
		if sa := d.Obj.(*corev1.ServiceAccount); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			r.problem(d, "automountServiceAccountToken", "must be false: mash does not call the Kubernetes API")
		}
	}
	if len(deployments) > 0 {
		r.checkDefaultDeny(policies)
		r.checkMigrateJob(jobs, configMaps)
		r.checkConnectionBudget(append(slices.Clone(deployments), jobs...), clusters)
	}
	// A Service may front a StatefulSet too (the example MinIO of the backups).
	selectable := append(slices.Clone(deployments), statefulSets...)
	for _, d := range services {
		r.checkServiceSelects(d, selectable)
	}
	for _, d := range pdbs {
		r.checkPDBSelects(d, deployments)
	}
}

func (r *Report) checkDeployment(w workload, services, pdbs, configMaps []*Doc) {
	d, dep := w.doc, w.doc.Obj.(*appsv1.Deployment)
	if dep.Spec.Selector == nil {
		r.problem(d, "spec.selector", "required")
	} else if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil {
		r.problem(d, "spec.selector", "invalid: %v", err)
	} else if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		r.problem(d, "spec.selector", "does not match the pod template's labels")
	}
	comp := dep.Spec.Template.Labels[labelComponent]
	if dep.Spec.Template.Labels[labelName] != appName || comp == "" {
		r.problem(d, "spec.template.metadata.labels", "must carry %s=%s and %s=<service>", labelName, appName, labelComponent)
	}
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	if replicas > 1 && len(dep.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		r.problem(d, "spec.template.spec.topologySpreadConstraints", "missing: %d replicas must be spread across nodes and zones", replicas)
	}
	if replicas > 1 && dep.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		r.problem(d, "spec.strategy.type", "Recreate takes every replica down at once; use RollingUpdate with %d replicas", replicas)
	}
	r.checkPod(w, true, configMaps)

	// The container runs `serve --services <component>`.
	if c := mainContainer(w.tmpl); c != nil && comp != "" {
		args := append(slices.Clone(c.Command), c.Args...)
		if !slices.Contains(args, "serve") {
			r.problem(d, "spec.template.spec.containers[0].args", "must run `mash serve --services %s`", comp)
		} else if got := servicesArg(args); got != comp {
			r.problem(d, "spec.template.spec.containers[0].args", "--services is %q: a Deployment runs exactly its component's service (%s)", got, comp)
		}
	}

	selects := func(sel *metav1.LabelSelector) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && sel != nil && !s.Empty() && s.Matches(labels.Set(dep.Spec.Template.Labels))
	}
	found := false
	for _, sd := range services {
		svc := sd.Obj.(*corev1.Service)
		if svc.Namespace == dep.Namespace && len(svc.Spec.Selector) > 0 && selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}) {
			found = true
		}
	}
	if !found {
		r.problem(d, "", "no Service selects this Deployment's pods")
	}
	found = false
	for _, pd := range pdbs {
		pdb := pd.Obj.(*policyv1.PodDisruptionBudget)
		if pdb.Namespace == dep.Namespace && selects(pdb.Spec.Selector) {
			found = true
			if replicas == 1 && pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= 1 {
				r.problem(pd, "spec.minAvailable", "a single replica with minAvailable %s blocks every node drain; use maxUnavailable: 1", pdb.Spec.MinAvailable.String())
			}
		}
	}
	if !found {
		r.problem(d, "", "no PodDisruptionBudget selects this Deployment's pods")
	}
}

// servicesArg returns the value of --services in args ("" when absent).
func servicesArg(args []string) string {
	for i, a := range args {
		switch {
		case (a == "--services" || a == "-services") && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--services="), strings.HasPrefix(a, "-services="):
			return a[strings.Index(a, "=")+1:]
		}
	}
	return ""
}

func mainContainer(t *corev1.PodTemplateSpec) *corev1.Container {
	if len(t.Spec.Containers) == 0 {
		return nil
	}
	return &t.Spec.Containers[0]
}

// checkPod checks a pod template: security context, resources, writable /tmp, and for
// long-running services the probes and listen addresses.
func (r *Report) checkPod(w workload, service bool, configMaps []*Doc) {
	d, spec := w.doc, &w.tmpl.Spec
	ps := w.base + ".spec"
	if len(spec.Containers) == 0 {
		r.problem(d, ps+".containers", "required")
		return
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		r.problem(d, ps+".automountServiceAccountToken", "must be false: mash does not call the Kubernetes API")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		r.problem(d, ps, "must not share the host's network, PID or IPC namespace")
	}
	podSC := spec.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	emptyDirs := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for i := range all {
		c := &all[i]
		cp := fmt.Sprintf("%s.containers[%d]", ps, i-len(spec.InitContainers))
		if i < len(spec.InitContainers) {
			cp = fmt.Sprintf("%s.initContainers[%d]", ps, i)
		}
		r.checkContainerSecurity(d, cp, c, podSC)
		r.checkResources(d, cp+".resources", c.Resources)
		r.checkImage(d, cp+".image", c.Image)
		tmp := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/tmp" && emptyDirs[m.Name] {
				tmp = true
			}
		}
		if !tmp {
			r.problem(d, cp+".volumeMounts", "missing an emptyDir at /tmp: the root filesystem is read-only")
		}
	}
	if !service {
		return
	}
	c := &spec.Containers[0]
	cp := ps + ".containers[0]"
	env := envValues(c, configMaps)
	httpPort := r.checkListen(d, cp, c, env, "MASH_HTTP_ADDR", "http")
	r.checkListen(d, cp, c, env, "MASH_GRPC_ADDR", "grpc")
	r.checkProbe(d, cp+".livenessProbe", c, c.LivenessProbe, healthzPath, httpPort)
	r.checkProbe(d, cp+".readinessProbe", c, c.ReadinessProbe, readyzPath, httpPort)
	r.checkProbe(d, cp+".startupProbe", c, c.StartupProbe, "", httpPort)
	for _, name := range fileSettings {
		if file, ok := env[name]; ok && file != "" {
			r.checkMountedFile(d, cp, spec, c, name, file, configMaps)
		}
	}
	if dir, ok := env["MASH_DATA_DIR"]; ok {
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == dir && emptyDirs[m.Name] {
				mounted = true
			}
		}
		if !mounted {
			r.problem(d, cp+".volumeMounts", "MASH_DATA_DIR %s must be a mounted emptyDir: the root filesystem is read-only", dir)
		}
	}
}

// fileSettings are settings that name a file the pod must have.
var fileSettings = []string{"MASH_NOTIFY_DIRECTORY"}

// checkMountedFile checks that file is mounted from a ConfigMap or Secret volume that has it.
func (r *Report) checkMountedFile(d *Doc, cp string, spec *corev1.PodSpec, c *corev1.Container, name, file string, configMaps []*Doc) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				for _, cd := range configMaps {
					if cm := cd.Obj.(*corev1.ConfigMap); cm.Name == v.ConfigMap.Name {
						if _, ok := cm.Data[rel]; !ok {
							r.problem(d, cp+".env", "%s is %s but ConfigMap %s has no key %q", name, file, cm.Name, rel)
						}
						return
					}
				}
				r.problem(d, cp+".env", "%s is %s, from ConfigMap %s, which is not among the manifests", name, file, v.ConfigMap.Name)
				return
			default:
				return // a Secret or other volume: its contents are not in the manifests
			}
		}
	}
	r.problem(d, cp+".volumeMounts", "%s is %s but no volume is mounted there", name, file)
}

func (r *Report) checkContainerSecurity(d *Doc, cp string, c *corev1.Container, pod *corev1.PodSecurityContext) {
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	f := cp + ".securityContext"
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		r.problem(d, f+".runAsNonRoot", "must be true (on the container or the pod)")
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = pod.RunAsUser
	}
	if uid != nil && *uid == 0 {
		r.problem(d, f+".runAsUser", "must not be 0")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		r.problem(d, f+".readOnlyRootFilesystem", "must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		r.problem(d, f+".allowPrivilegeEscalation", "must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		r.problem(d, f+".privileged", "must not be true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		r.problem(d, f+".capabilities.drop", "must drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		r.problem(d, f+".capabilities.add", "must add none")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		r.problem(d, f+".seccompProfile.type", "must be RuntimeDefault (on the container or the pod)")
	}
}

func (r *Report) checkResources(d *Doc, field string, res corev1.ResourceRequirements) {
	for _, kind := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := res.Requests[kind]
		lim, hasLim := res.Limits[kind]
		if !hasReq {
			r.problem(d, field+".requests."+string(kind), "missing: set a request")
		}
		if !hasLim {
			r.problem(d, field+".limits."+string(kind), "missing: set a limit")
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			r.problem(d, field+".requests."+string(kind), "request %s is above the limit %s", req.String(), lim.String())
		}
	}
}

func (r *Report) checkImage(d *Doc, field, image string) {
	if image == "" {
		r.problem(d, field, "required")
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	last := image[strings.LastIndex(image, "/")+1:]
	tag := ""
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag = last[i+1:]
	}
	if tag == "" || tag == "latest" {
		r.problem(d, field, "%q: pin a version tag or digest, not latest", image)
	}
}

// envValues returns the container's literal environment, with the ConfigMaps it loads
// through envFrom underneath.
func envValues(c *corev1.Container, configMaps []*Doc) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for _, d := range configMaps {
			if cm := d.Obj.(*corev1.ConfigMap); cm.Name == ef.ConfigMapRef.Name {
				for k, v := range cm.Data {
					env[ef.Prefix+k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// checkListen checks that a listen address is on all interfaces at a declared container
// port named portName, and returns that port.
func (r *Report) checkListen(d *Doc, cp string, c *corev1.Container, env map[string]string, name, portName string) int32 {
	addr, ok := env[name]
	if !ok {
		r.problem(d, cp+".env", "%s is not set: mash listens on 127.0.0.1 by default, out of reach of probes and Services", name)
		return 0
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.problem(d, cp+".env", "%s %q: must be host:port", name, addr)
		return 0
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		r.problem(d, cp+".env", "%s %q: must listen on 0.0.0.0 in a pod", name, addr)
	}
	n, _ := strconv.Atoi(port)
	for _, p := range c.Ports {
		if p.Name == portName {
			if p.ContainerPort != int32(n) {
				r.problem(d, cp+".ports", "port %q is %d but %s listens on %s", portName, p.ContainerPort, name, port)
			}
			return p.ContainerPort
		}
	}
	r.problem(d, cp+".ports", "no container port named %q for %s", portName, name)
	return int32(n)
}

// checkProbe checks that a probe exists and, when path is set, GETs that path on the HTTP port.
func (r *Report) checkProbe(d *Doc, field string, c *corev1.Container, p *corev1.Probe, path string, httpPort int32) {
	if p == nil {
		what := "a startup probe"
		if path != "" {
			what = "an HTTP probe on " + path
		}
		r.problem(d, field, "missing: every service container needs %s", what)
		return
	}
	if p.HTTPGet == nil {
		if path != "" {
			r.problem(d, field+".httpGet", "missing: must GET %s", path)
		}
		return
	}
	if path != "" && p.HTTPGet.Path != path {
		r.problem(d, field+".httpGet.path", "is %q: must be %s", p.HTTPGet.Path, path)
	}
	if httpPort != 0 && resolvePort(c, p.HTTPGet.Port) != httpPort {
		r.problem(d, field+".httpGet.port", "%s is not the HTTP port %d", p.HTTPGet.Port.String(), httpPort)
	}
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// checkSecretRefs requires secrets to come from Secrets: no literal value, and no ConfigMap.
// DATABASE_URL must be the CloudNativePG cluster's application Secret, or (checkServiceLogin)
// a URL without a password naming the service's own managed role.
func (r *Report) checkSecretRefs(w workload, clusters []*Doc) {
	for ci, c := range w.tmpl.Spec.Containers {
		for ei, e := range c.Env {
			field := fmt.Sprintf("%s.spec.containers[%d].env[%d]", w.base, ci, ei)
			if !isSecretEnv(e.Name) {
				continue
			}
			if e.Name == "DATABASE_URL" && e.ValueFrom == nil && len(clusters) > 0 {
				r.checkServiceLogin(w, field, &c, e.Value, clusters)
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				r.problem(w.doc, field, "%s must come from a Secret (valueFrom.secretKeyRef), never a literal value or a ConfigMap", e.Name)
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if e.Name == "DATABASE_URL" && len(clusters) > 0 {
				ok := false
				for _, cd := range clusters {
					if cl := cd.Obj.(*CNPGCluster); ref.Name == cl.Name+cnpgAppSuffix && ref.Key == cnpgURIKey {
						ok = true
					}
				}
				if !ok {
					r.problem(w.doc, field+".valueFrom.secretKeyRef", "DATABASE_URL reads %s/%s: use the CloudNativePG application Secret <cluster>%s, key %q", ref.Name, ref.Key, cnpgAppSuffix, cnpgURIKey)
				}
			}
		}
	}
}

// checkConfigMap keeps secrets out of ConfigMaps.
func (r *Report) checkConfigMap(d *Doc) {
	cm := d.Obj.(*corev1.ConfigMap)
	for _, k := range sortedKeys(cm.Data) {
		if isSecretEnv(k) {
			r.problem(d, "data."+k, "a secret does not belong in a ConfigMap: reference a Secret with secretKeyRef")
		}
		if strings.HasSuffix(k, "_URL") && strings.Contains(cm.Data[k], "@") {
			r.problem(d, "data."+k, "the URL carries credentials: keep it in a Secret")
		}
	}
	for _, k := range sortedKeys(cm.Data) {
		if ext := strings.ToLower(path.Ext(k)); ext == ".yaml" || ext == ".yml" {
			var v any
			if err := yaml.Unmarshal([]byte(cm.Data[k]), &v); err != nil {
				r.problem(d, "data."+k, "not valid YAML: %v", err)
			}
		}
	}
	if v, ok := cm.Data[natsReplicasEnv]; ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || (n != 1 && n != 3 && n != 5):
			r.problem(d, "data."+natsReplicasEnv, "%q: must be 1, 3 or 5", v)
		case r.nats.checked && n > r.nats.replicas:
			r.problem(d, "data."+natsReplicasEnv, "%d stream replicas need at least %d NATS servers; %s has %d", n, n, natsValues, r.nats.replicas)
		case r.nats.checked && n < 3 && r.nats.replicas >= 3:
			r.problem(d, "data."+natsReplicasEnv, "is %d on a %d-server NATS cluster: use 3 so the stream survives the loss of a server", n, r.nats.replicas)
		}
	}
}

// checkCluster holds the CloudNativePG cluster to three instances with synchronous
// replication and the mash database.
func (r *Report) checkCluster(d *Doc) {
	cl := d.Obj.(*CNPGCluster)
	s := cl.Spec
	if s.Instances < 3 {
		r.problem(d, "spec.instances", "is %d: use at least 3 (a primary and two standbys)", s.Instances)
	}
	sync := s.PostgresConfiguration.Synchronous
	switch {
	case sync == nil:
		r.problem(d, "spec.postgresql.synchronous", "missing: commits must reach a standby before they are acknowledged")
	default:
		if sync.Method != "any" && sync.Method != "first" {
			r.problem(d, "spec.postgresql.synchronous.method", "is %q: must be any or first", sync.Method)
		}
		if sync.Number < 1 || sync.Number >= s.Instances {
			r.problem(d, "spec.postgresql.synchronous.number", "is %d: must be from 1 to instances-1 (%d)", sync.Number, s.Instances-1)
		}
		if sync.DataDurability != "" && sync.DataDurability != "required" && sync.DataDurability != "preferred" {
			r.problem(d, "spec.postgresql.synchronous.dataDurability", "is %q: must be required or preferred", sync.DataDurability)
		}
		if s.MinSyncReplicas != 0 || s.MaxSyncReplicas != 0 {
			r.problem(d, "spec.minSyncReplicas", "do not combine minSyncReplicas/maxSyncReplicas with spec.postgresql.synchronous")
		}
	}
	if s.Bootstrap == nil || s.Bootstrap.InitDB == nil {
		r.problem(d, "spec.bootstrap.initdb", "missing: bootstrap the database mash owned by mash")
	} else if db := s.Bootstrap.InitDB; db.Database != "mash" || db.Owner != "mash" {
		r.problem(d, "spec.bootstrap.initdb", "database %q owner %q: must be database mash, owner mash", db.Database, db.Owner)
	}
	if s.StorageConfiguration.Size == "" && s.StorageConfiguration.PersistentVolumeClaimTemplate == nil {
		r.problem(d, "spec.storage.size", "missing: set the data volume size")
	}
	r.checkResources(d, "spec.resources", s.Resources)
}

// checkDefaultDeny requires a policy that denies all ingress and egress in each namespace.
func (r *Report) checkDefaultDeny(policies []*Doc) {
	for _, d := range policies {
		np := d.Obj.(*networkingv1.NetworkPolicy)
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 {
			return
		}
	}
	r.fileProblem("kubernetes", "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
}

// checkMigrateJob requires a Job that runs `mash migrate` when the services do not migrate
// at start.
func (r *Report) checkMigrateJob(jobs []workload, configMaps []*Doc) {
	migrateOnStart := true
	var where *Doc
	for _, d := range configMaps {
		if v, ok := d.Obj.(*corev1.ConfigMap).Data["MASH_MIGRATE_ON_START"]; ok {
			b, _ := strconv.ParseBool(v)
			migrateOnStart, where = b, d
		}
	}
	for _, w := range jobs {
		if c := mainContainer(w.tmpl); c != nil && slices.Contains(append(slices.Clone(c.Command), c.Args...), "migrate") {
			if w.tmpl.Spec.RestartPolicy != corev1.RestartPolicyNever && w.tmpl.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
				r.problem(w.doc, "spec.template.spec.restartPolicy", "must be Never or OnFailure")
			}
			return
		}
	}
	if !migrateOnStart {
		r.problem(where, "data.MASH_MIGRATE_ON_START", "is false but no Job runs `mash migrate`")
	}
}

func (r *Report) checkServiceSelects(d *Doc, deployments []workload) {
	svc := d.Obj.(*corev1.Service)
	if len(svc.Spec.Selector) == 0 {
		return
	}
	for _, w := range deployments {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.tmpl.Labels)) {
			c := mainContainer(w.tmpl)
			for i, p := range svc.Spec.Ports {
				if c != nil && resolvePort(c, p.TargetPort) < 0 && p.TargetPort.Type == intstr.String {
					r.problem(d, fmt.Sprintf("spec.ports[%d].targetPort", i), "%q is not a port name of %s", p.TargetPort.StrVal, w.doc.ID())
				}
			}
			return
		}
	}
	r.problem(d, "spec.selector", "selects no Deployment's pods")
}

func (r *Report) checkPDBSelects(d *Doc, deployments []workload) {
	pdb := d.Obj.(*policyv1.PodDisruptionBudget)
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdb.Spec.Selector == nil || sel.Empty() {
		r.problem(d, "spec.selector", "must select the pods of one Deployment")
		return
	}
	for _, w := range deployments {
		if sel.Matches(labels.Set(w.tmpl.Labels)) {
			return
		}
	}
	r.problem(d, "spec.selector", "selects no Deployment's pods")
}

// checkServiceLogin checks a literal DATABASE_URL: it may hold no password, must name the
// login of the Deployment's own service (mash_<component>), a role the Cluster manages, with
// PGPASSWORD from that role's password Secret. The migrate Job, which owns the schemas,
// uses the application Secret instead.
func (r *Report) checkServiceLogin(w workload, field string, c *corev1.Container, raw string, clusters []*Doc) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil {
		r.problem(w.doc, field, "DATABASE_URL %q: must be a postgresql:// URL naming the service's login", raw)
		return
	}
	if _, has := u.User.Password(); has {
		r.problem(w.doc, field, "DATABASE_URL holds a password: a literal URL names the login only, the password comes from a Secret as PGPASSWORD")
		return
	}
	comp := w.tmpl.Labels[labelComponent]
	if _, isDeployment := w.doc.Obj.(*appsv1.Deployment); !isDeployment || comp == "" {
		r.problem(w.doc, field, "DATABASE_URL: only a service's Deployment uses its own login; use the application Secret %s", cnpgAppSuffix)
		return
	}
	user := u.User.Username()
	if want := "mash_" + comp; user != want {
		r.problem(w.doc, field, "DATABASE_URL logs in as %q: the %s service's login is %s", user, comp, want)
		return
	}
	var role *CNPGRoleConfiguration
	for _, cd := range clusters {
		if m := cd.Obj.(*CNPGCluster).Spec.Managed; m != nil {
			for i := range m.Roles {
				if m.Roles[i].Name == user {
					role = &m.Roles[i]
				}
			}
		}
	}
	if role == nil || !role.Login || role.PasswordSecret == nil || (role.Ensure != "" && role.Ensure != "present") {
		r.problem(w.doc, field, "DATABASE_URL logs in as %s, which no Cluster manages as a present login role with a passwordSecret (spec.managed.roles)", user)
		return
	}
	if role.Superuser || role.CreateRole || role.CreateDB || role.BypassRLS || role.Replication {
		r.problem(w.doc, field, "the role %s has superuser, createrole, createdb, bypassrls or replication: a service login needs none", user)
	}
	for _, e := range c.Env {
		if e.Name == "PGPASSWORD" {
			if ref := e.ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != role.PasswordSecret.Name || ref.SecretKeyRef.Key != "password" {
				r.problem(w.doc, field, "PGPASSWORD must come from the role's password Secret %s, key \"password\"", role.PasswordSecret.Name)
			}
			return
		}
	}
	r.problem(w.doc, field, "DATABASE_URL has no password and PGPASSWORD is not set from the Secret %s", role.PasswordSecret.Name)
}
