package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// deployDir is the real deploy directory this module lives in.
const deployDir = ".."

// TestDeployDirectoryIsValid is the check CI relies on: the committed files pass.
func TestDeployDirectoryIsValid(t *testing.T) {
	rep, err := Check(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("%s", p)
	}
	kinds := map[string]int{}
	for _, d := range rep.Docs {
		kinds[d.Kind]++
		if d.Obj == nil {
			t.Errorf("%s#%d was not decoded", d.File, d.Index)
		}
	}
	for kind, want := range map[string]int{"Deployment": 6, "Service": 7, "PodDisruptionBudget": 6, "Job": 1, "Cluster": 1, "Kustomization": 1, "NATS Helm values": 1, "Certificate": 10, "ClusterIssuer": 2, "Ingress": 2, "ScheduledBackup": 1, "ObjectStore": 1, "StatefulSet": 1} {
		if kinds[kind] != want {
			t.Errorf("%d %s documents, want %d", kinds[kind], kind, want)
		}
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "ok   kubernetes/intake.yaml#1 Deployment mash/mash-intake") ||
		!strings.Contains(out.String(), " 0 problems") {
		t.Errorf("report:\n%s", out.String())
	}
}

// mutated copies the deploy directory (without this module) to a temporary one and
// replaces old with new in file, which must contain old exactly once.
func mutated(t *testing.T, file, old, new string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(deployDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		if e.IsDir() {
			if rel == "check" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.ToSlash(rel) == file {
			if n := strings.Count(string(data), old); n != 1 {
				t.Fatalf("%s contains %q %d times, want once", file, old, n)
			}
			data = []byte(strings.Replace(string(data), old, new, 1))
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// problems runs the check on dir and returns its problems as text.
func problems(t *testing.T, dir string) []string {
	t.Helper()
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

// wantProblem fails unless exactly one problem contains every one of parts.
func wantProblem(t *testing.T, got []string, parts ...string) {
	t.Helper()
	n := 0
	for _, p := range got {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(p, part)
		}
		if all {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want one problem containing %q, got %d in:\n%s", parts, n, strings.Join(got, "\n"))
	}
}

func TestUnknownFieldIsRejectedNamingFileDocumentAndField(t *testing.T) {
	// A typo in the Service, the second document of rules.yaml.
	dir := mutated(t, "kubernetes/rules.yaml", "      appProtocol: https\n", "      appProtocol: https\n      protocoll: TCP\n")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/rules.yaml document 2", "Service mash/mash-rules", "spec.ports[0].protocoll", "unknown field")
	if len(got) != 1 {
		t.Errorf("want only the unknown field, got:\n%s", strings.Join(got, "\n"))
	}
}

func TestUnknownFieldDeepInAPodTemplate(t *testing.T) {
	dir := mutated(t, "kubernetes/intake.yaml", "            periodSeconds: 10\n", "            periodSeconds: 10\n            periodSecond: 10\n")
	wantProblem(t, problems(t, dir), "kubernetes/intake.yaml document 1", "Deployment mash/mash-intake",
		"spec.template.spec.containers[0].livenessProbe.periodSecond", "unknown field")
}

func TestDuplicateFieldIsRejected(t *testing.T) {
	dir := mutated(t, "kubernetes/serviceaccount.yaml", "automountServiceAccountToken: false\n", "automountServiceAccountToken: false\nautomountServiceAccountToken: true\n")
	got := problems(t, dir)
	if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "kubernetes/serviceaccount.yaml document 1") {
		t.Errorf("duplicate key not reported:\n%s", strings.Join(got, "\n"))
	}
}

func TestWrongTypeNamesTheField(t *testing.T) {
	dir := mutated(t, "kubernetes/audit.yaml", "  replicas: 1\n", "  replicas: one\n")
	wantProblem(t, problems(t, dir), "kubernetes/audit.yaml document 1", "Deployment mash/mash-audit", "spec.replicas", "does not decode")
}

func TestMissingLivenessProbeIsRejected(t *testing.T) {
	dir := mutated(t, "kubernetes/notify.yaml", `          livenessProbe:
            httpGet:
              scheme: HTTPS
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
`, "")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/notify.yaml document 1", "Deployment mash/mash-notify", "spec.template.spec.containers[0].livenessProbe", "missing")
	if len(got) != 1 {
		t.Errorf("want only the missing probe, got:\n%s", strings.Join(got, "\n"))
	}
}

func TestReadinessProbeMustBeReadyz(t *testing.T) {
	dir := mutated(t, "kubernetes/rules.yaml", "              path: /readyz\n", "              path: /healthz\n")
	wantProblem(t, problems(t, dir), "kubernetes/rules.yaml document 1", "readinessProbe.httpGet.path", "/readyz")
}

func TestLiteralDatabaseURLIsRejected(t *testing.T) {
	dir := mutated(t, "kubernetes/migrate-job.yaml", `            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: mash-database-app
                  key: uri
`, `            - name: DATABASE_URL
              value: postgres://mash:hunter2@db:5432/mash
`)
	wantProblem(t, problems(t, dir), "kubernetes/migrate-job.yaml document 1", "Job mash/mash-migrate", "DATABASE_URL holds a password")
	dir = mutated(t, "kubernetes/migrate-job.yaml", `            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: mash-database-app
                  key: uri
`, `            - name: DATABASE_URL
              value: postgres://mash@db:5432/mash
`)
	wantProblem(t, problems(t, dir), "Job mash/mash-migrate", "only a service's Deployment uses its own login")
}

func TestAuditKeyInConfigMapIsRejected(t *testing.T) {
	dir := mutated(t, "kubernetes/config.yaml", "  MASH_LOG_LEVEL: info\n", "  MASH_LOG_LEVEL: info\n  MASH_AUDIT_MASTER_KEY: c2VjcmV0\n")
	wantProblem(t, problems(t, dir), "kubernetes/config.yaml document 1", "data.MASH_AUDIT_MASTER_KEY", "Secret")
}

func TestCommittedSecretIsRejected(t *testing.T) {
	dir := mutated(t, "kubernetes/serviceaccount.yaml", "automountServiceAccountToken: false\n",
		"automountServiceAccountToken: false\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: mash-audit-keys\n  namespace: mash\nstringData:\n  MASH_AUDIT_MASTER_KEY: x\n")
	wantProblem(t, problems(t, dir), "kubernetes/serviceaccount.yaml document 2", "Secret mash/mash-audit-keys", "out of band")
}

func TestSecurityContextIsEnforced(t *testing.T) {
	dir := mutated(t, "kubernetes/intake.yaml", "            readOnlyRootFilesystem: true\n            capabilities:\n              drop: [\"ALL\"]\n",
		"            readOnlyRootFilesystem: false\n")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/intake.yaml document 1", "securityContext.readOnlyRootFilesystem", "must be true")
	wantProblem(t, got, "kubernetes/intake.yaml document 1", "securityContext.capabilities.drop", "ALL")
}

func TestResourcesAreRequired(t *testing.T) {
	dir := mutated(t, "kubernetes/migrate-job.yaml", "            limits:\n              cpu: \"1\"\n              memory: 256Mi\n", "")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/migrate-job.yaml document 1", "resources.limits.cpu", "missing")
	wantProblem(t, got, "kubernetes/migrate-job.yaml document 1", "resources.limits.memory", "missing")
}

func TestEveryDeploymentNeedsAPDBAndAService(t *testing.T) {
	// Point the audit PDB's selector at pods that do not exist.
	dir := mutated(t, "kubernetes/audit.yaml", `  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: mash
      app.kubernetes.io/component: audit`, `  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: mash
      app.kubernetes.io/component: auditor`)
	got := problems(t, dir)
	wantProblem(t, got, "Deployment mash/mash-audit", "no PodDisruptionBudget selects")
	wantProblem(t, got, "PodDisruptionBudget mash/mash-audit", "spec.selector", "selects no Deployment")
}

func TestListenAddressMustBeAllInterfaces(t *testing.T) {
	dir := mutated(t, "kubernetes/audit.yaml", "              value: 0.0.0.0:9090\n", "              value: 127.0.0.1:9090\n")
	wantProblem(t, problems(t, dir), "Deployment mash/mash-audit", "MASH_GRPC_ADDR", "0.0.0.0")
}

func TestServicesArgMatchesComponent(t *testing.T) {
	dir := mutated(t, "kubernetes/rules.yaml", `args: ["serve", "--services", "rules"]`, `args: ["serve", "--services", "rules,audit"]`)
	wantProblem(t, problems(t, dir), "Deployment mash/mash-rules", "--services is \"rules,audit\"")
}

func TestUnlistedManifestIsReported(t *testing.T) {
	dir := mutated(t, "kubernetes/kustomization.yaml", "  - notify.yaml\n", "")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/kustomization.yaml", "notify.yaml is beside the kustomization but not listed")
}

func TestMissingKustomizeResourceIsReported(t *testing.T) {
	dir := mutated(t, "kubernetes/kustomization.yaml", "  - notify.yaml\n", "  - notify.yaml\n  - cronjob.yaml\n")
	got := problems(t, dir)
	wantProblem(t, got, "kubernetes/kustomization.yaml", "\"cronjob.yaml\" does not exist")
}

func TestNATSValuesNeedSyncAlways(t *testing.T) {
	dir := mutated(t, "nats/values.yaml", "      sync_interval: always\n", "      sync_interval: 2m\n")
	wantProblem(t, problems(t, dir), "nats/values.yaml", "config.jetstream.merge.sync_interval", "always")
}

func TestNATSValuesUnknownKey(t *testing.T) {
	dir := mutated(t, "nats/values.yaml", "    fileStore:\n", "    filestore:\n      enabled: true\n    fileStore:\n")
	wantProblem(t, problems(t, dir), "nats/values.yaml", "config.jetstream.filestore", "unknown field")
}

func TestNATSReplicasMatchStreamReplicas(t *testing.T) {
	dir := mutated(t, "nats/values.yaml", "    replicas: 3\n", "    replicas: 1\n")
	got := problems(t, dir)
	wantProblem(t, got, "nats/values.yaml", "config.cluster.replicas", "at least 3")
	wantProblem(t, got, "kubernetes/config.yaml document 1", "data.MASH_NATS_REPLICAS", "NATS servers")
}

func TestPostgresNeedsSynchronousReplication(t *testing.T) {
	dir := mutated(t, "postgres/cluster.yaml", "    synchronous:\n      method: any\n      number: 1\n      dataDurability: required\n", "")
	wantProblem(t, problems(t, dir), "postgres/cluster.yaml document 1", "Cluster mash/mash-database", "spec.postgresql.synchronous", "missing")
}

func TestPostgresUnknownFieldIsRejected(t *testing.T) {
	dir := mutated(t, "postgres/cluster.yaml", "  instances: 3\n", "  instances: 3\n  minSyncReplica: 1\n")
	wantProblem(t, problems(t, dir), "postgres/cluster.yaml document 1", "spec.minSyncReplica", "unknown field")
}

func TestDatabaseSecretMustBeTheClustersAppSecret(t *testing.T) {
	dir := mutated(t, "postgres/cluster.yaml", "  name: mash-database\n", "  name: mash-pg\n")
	got := problems(t, dir)
	wantProblem(t, got, "mash-migrate", "DATABASE_URL reads mash-database-app/uri")
}

// Each service logs in as its own managed role, with the password from that role's Secret.
func TestServiceDatabaseLogins(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new string
		want                 []string
	}{
		{"another service's login", "kubernetes/intake.yaml", "postgresql://mash_intake@", "postgresql://mash_triage@",
			[]string{"Deployment mash/mash-intake", "logs in as \"mash_triage\"", "login is mash_intake"}},
		{"password in the URL", "kubernetes/rules.yaml", "postgresql://mash_rules@", "postgresql://mash_rules:hunter2@",
			[]string{"Deployment mash/mash-rules", "holds a password"}},
		{"role not managed", "postgres/cluster.yaml", "      - name: mash_notify\n", "      - name: mash_notifier\n",
			[]string{"Deployment mash/mash-notify", "mash_notify, which no Cluster manages"}},
		{"password from another Secret", "kubernetes/audit.yaml", "                  name: mash-database-audit\n", "                  name: mash-database-intake\n",
			[]string{"Deployment mash/mash-audit", "PGPASSWORD must come from the role's password Secret mash-database-audit"}},
		{"no password", "kubernetes/triage.yaml", "            - name: PGPASSWORD\n", "            - name: PGPASSWORDX\n",
			[]string{"Deployment mash/mash-triage", "PGPASSWORD is not set"}},
		{"over-privileged role", "postgres/cluster.yaml", "      - name: mash_console\n        ensure: present\n", "      - name: mash_console\n        ensure: present\n        createrole: true\n",
			[]string{"Deployment mash/mash-console", "a service login needs none"}},
		{"a service's own URL as a literal", "kubernetes/rules.yaml", "            - name: DATABASE_URL\n", "            - name: MASH_RULES_DATABASE_URL\n              value: postgresql://mash_rules:hunter2@mash-database-rw:5432/mash\n            - name: DATABASE_URL\n",
			[]string{"Deployment mash/mash-rules", "MASH_RULES_DATABASE_URL must come from a Secret"}},
		{"role field misspelt", "postgres/cluster.yaml", "      - name: mash_console\n        ensure: present\n", "      - name: mash_console\n        ensured: present\n",
			[]string{"Cluster mash/mash-database", "ensured", "unknown field"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, c.file, c.old, c.new)), c.want...)
		})
	}
}

func TestSplitDocumentsKeepsLinesAndSkipsEmptyDocuments(t *testing.T) {
	docs := splitDocuments([]byte("# header\n---\na: 1\n---\n# only a comment\n---\n\nb: 2\n"))
	if len(docs) != 2 || docs[0].line != 3 || docs[1].line != 8 {
		t.Fatalf("got %+v", docs)
	}
}

func TestEveryDeploymentNeedsAService(t *testing.T) {
	dir := mutated(t, "kubernetes/notify.yaml", `  selector:
    app.kubernetes.io/name: mash
    app.kubernetes.io/component: notify
  ports:`, `  selector:
    app.kubernetes.io/name: mash
    app.kubernetes.io/component: notifier
  ports:`)
	got := problems(t, dir)
	wantProblem(t, got, "Deployment mash/mash-notify", "no Service selects")
	wantProblem(t, got, "Service mash/mash-notify", "spec.selector", "selects no Deployment")
}

func TestKustomizeBuildFailureIsReported(t *testing.T) {
	dir := mutated(t, "kubernetes/kustomization.yaml", "  - notify.yaml\n", "  - notify.yaml\n  - rules.yaml\n")
	wantProblem(t, problems(t, dir), "kubernetes/kustomization.yaml", "kustomize build fails")
}

func TestNotifyDirectoryMustBeMounted(t *testing.T) {
	dir := mutated(t, "kubernetes/notify.yaml", "              value: /etc/mash/notify/directory.yaml\n", "              value: /etc/mash/notify/agencies.yaml\n")
	wantProblem(t, problems(t, dir), "Deployment mash/mash-notify", "MASH_NOTIFY_DIRECTORY", "no key \"agencies.yaml\"")
}

func TestConfigMapYAMLFileMustParse(t *testing.T) {
	dir := mutated(t, "kubernetes/config.yaml", "    agencies: []\n", "    agencies: [\n")
	wantProblem(t, problems(t, dir), "ConfigMap mash/mash-notify-directory", "data.directory.yaml", "not valid YAML")
}

// TestREADMESelectorsPickTheMigrateJob checks the label selectors deploy/README.md applies the
// base with: before the first rollout (everything but the services' own objects) and at
// each release (the migrate Job alone).
func TestREADMESelectorsPickTheMigrateJob(t *testing.T) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(deployDir, "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	pick := func(selector string) map[string]bool {
		sel, err := labels.Parse(selector)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, res := range resMap.Resources() {
			if sel.Matches(labels.Set(res.GetLabels())) {
				got[res.GetKind()+"/"+res.GetName()] = true
			}
		}
		return got
	}
	first := pick("app.kubernetes.io/component notin (intake,rules,notify,audit,triage,console)")
	for _, want := range []string{"Namespace/mash", "ServiceAccount/mash", "ConfigMap/mash-config", "NetworkPolicy/default-deny",
		"NetworkPolicy/allow-dns", "NetworkPolicy/mash-to-postgres", "NetworkPolicy/mash-database", "Job/mash-migrate"} {
		if !first[want] {
			t.Errorf("first-install selector misses %s (got %v)", want, first)
		}
	}
	for k := range first {
		if strings.HasPrefix(k, "Deployment/") || strings.HasPrefix(k, "Service/") || strings.HasPrefix(k, "PodDisruptionBudget/") {
			t.Errorf("first-install selector takes %s", k)
		}
	}
	release := pick("app.kubernetes.io/component=migrate")
	if len(release) != 1 || !release["Job/mash-migrate"] {
		t.Errorf("release selector takes %v, want only Job/mash-migrate", release)
	}
	// kustomize's images transformer reaches the Job, so it runs the release's image.
	for _, res := range resMap.Resources() {
		if res.GetKind() == "Job" {
			img, err := res.GetString("spec.template.spec.containers[0].image")
			if err != nil || img != "registry.example.org/mash/mash:0.1.0" {
				t.Errorf("Job image %q, %v", img, err)
			}
		}
	}
}

// The pods' connections, each opening all it may, must fit the cluster's max_connections: at
// 200, eleven service pods and the migrate Job (21 each) leave too little for the superuser
// and the operator.
func TestConnectionBudgetMustFitMaxConnections(t *testing.T) {
	dir := mutated(t, "postgres/cluster.yaml", `      max_connections: "300"`, `      max_connections: "200"`)
	wantProblem(t, problems(t, dir), "postgres/cluster.yaml", "max_connections", "is 200", "may open 252 connections")
	dir = mutated(t, "kubernetes/rules.yaml", "              cpu: \"1\"\n", "")
	wantProblem(t, problems(t, dir), "kubernetes/rules.yaml", "resources.limits.cpu: required")
}
