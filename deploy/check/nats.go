package main

import (
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The NATS Helm chart (nats-io/k8s, chart "nats" 1.x) ships no Go types for its values, so
// the values file is decoded strictly into the model below: the chart keys this deployment
// uses, with the chart's names. A key the model lacks is reported as unknown, which catches
// typos; add keys here when the values use more of the chart. Free-form "merge" blocks (NATS
// server configuration, Kubernetes object fragments) are maps.

type natsChartValues struct {
	Config              natsConfig            `json:"config"`
	Container           natsContainer         `json:"container,omitempty"`
	Reloader            natsContainer         `json:"reloader,omitempty"`
	PodTemplate         natsPodTemplate       `json:"podTemplate,omitempty"`
	PodDisruptionBudget natsEnabledMergePatch `json:"podDisruptionBudget,omitempty"`
	PromExporter        natsPromExporter      `json:"promExporter,omitempty"`
	NatsBox             natsEnabledMergePatch `json:"natsBox,omitempty"`
	StatefulSet         natsStatefulSet       `json:"statefulSet,omitempty"`
	Service             natsEnabledMergePatch `json:"service,omitempty"`
	Global              map[string]any        `json:"global,omitempty"`
	FullnameOverride    string                `json:"fullnameOverride,omitempty"`
	NamespaceOverride   string                `json:"namespaceOverride,omitempty"`
}

type natsStatefulSet struct {
	// Merge is merged into the chart's StatefulSet.
	Merge *appsv1.StatefulSet `json:"merge,omitempty"`
	Patch []any               `json:"patch,omitempty"`
}

type natsEnabledMergePatch struct {
	Enabled *bool          `json:"enabled,omitempty"`
	Name    string         `json:"name,omitempty"`
	Merge   map[string]any `json:"merge,omitempty"`
	Patch   []any          `json:"patch,omitempty"`
}

type natsConfig struct {
	Cluster   natsCluster           `json:"cluster,omitempty"`
	JetStream natsJetStream         `json:"jetstream,omitempty"`
	Monitor   natsPort              `json:"monitor,omitempty"`
	NATS      natsPort              `json:"nats,omitempty"`
	Resolver  natsEnabledMergePatch `json:"resolver,omitempty"`
	Merge     map[string]any        `json:"merge,omitempty"`
	Patch     []any                 `json:"patch,omitempty"`
}

type natsPort struct {
	Enabled *bool          `json:"enabled,omitempty"`
	Port    int            `json:"port,omitempty"`
	TLS     map[string]any `json:"tls,omitempty"`
}

type natsCluster struct {
	Enabled   bool           `json:"enabled"`
	Replicas  int            `json:"replicas"`
	Port      int            `json:"port,omitempty"`
	RouteURLs map[string]any `json:"routeURLs,omitempty"`
	TLS       map[string]any `json:"tls,omitempty"`
	Merge     map[string]any `json:"merge,omitempty"`
	Patch     []any          `json:"patch,omitempty"`
}

type natsJetStream struct {
	Enabled     bool            `json:"enabled"`
	FileStore   natsFileStore   `json:"fileStore"`
	MemoryStore natsMemoryStore `json:"memoryStore,omitempty"`
	Merge       map[string]any  `json:"merge,omitempty"`
	Patch       []any           `json:"patch,omitempty"`
}

type natsFileStore struct {
	Enabled *bool   `json:"enabled,omitempty"`
	Dir     string  `json:"dir,omitempty"`
	MaxSize string  `json:"maxSize,omitempty"`
	PVC     natsPVC `json:"pvc"`
}

type natsPVC struct {
	Enabled          *bool          `json:"enabled,omitempty"`
	Size             string         `json:"size,omitempty"`
	StorageClassName string         `json:"storageClassName,omitempty"`
	Name             string         `json:"name,omitempty"`
	Merge            map[string]any `json:"merge,omitempty"`
	Patch            []any          `json:"patch,omitempty"`
}

type natsMemoryStore struct {
	Enabled bool   `json:"enabled"`
	MaxSize string `json:"maxSize,omitempty"`
}

type natsContainer struct {
	Image map[string]any `json:"image,omitempty"`
	Env   map[string]any `json:"env,omitempty"`
	// Merge is merged into the chart's container, so it is a (partial) Container.
	Merge *corev1.Container `json:"merge,omitempty"`
	Patch []any             `json:"patch,omitempty"`
}

type natsPodTemplate struct {
	// TopologySpreadConstraints is keyed by topology key; the chart adds the key and selector.
	TopologySpreadConstraints map[string]corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// Merge is merged into the chart's pod template.
	Merge *corev1.PodTemplateSpec `json:"merge,omitempty"`
	Patch []any                   `json:"patch,omitempty"`
}

type natsPromExporter struct {
	Enabled    bool                  `json:"enabled"`
	Port       int                   `json:"port,omitempty"`
	PodMonitor natsEnabledMergePatch `json:"podMonitor,omitempty"`
}

// natsFacts is what checkNATS found, for the cross-check with MASH_NATS_REPLICAS.
type natsFacts struct {
	checked  bool
	replicas int
	doc      *Doc
}

// checkNATS validates the NATS chart values: a 3-server cluster, JetStream on a persistent
// file store, fsync of every write (sync_interval: always), resources, and a PDB.
func (r *Report) checkNATS(path, rel string) {
	data, err := os.ReadFile(path)
	if err != nil {
		r.fileProblem(rel, "missing: %v", err)
		return
	}
	d := &Doc{File: rel, Index: 1, Line: 1, Kind: "NATS Helm values"}
	r.Docs = append(r.Docs, d)
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		r.problem(d, "", "not valid YAML: %v", err)
		return
	}
	var v natsChartValues
	if !r.strict(d, js, &v) {
		return
	}
	d.Obj = &v
	r.nats = natsFacts{checked: true, replicas: v.Config.Cluster.Replicas, doc: d}

	c := v.Config
	if !c.Cluster.Enabled {
		r.problem(d, "config.cluster.enabled", "must be true: mash needs a NATS cluster for R3 streams")
	}
	if c.Cluster.Replicas < 3 || c.Cluster.Replicas%2 == 0 {
		r.problem(d, "config.cluster.replicas", "is %d: must be an odd number of at least 3 (JetStream's quorum)", c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled {
		r.problem(d, "config.jetstream.enabled", "must be true: mash's events live in JetStream")
	}
	fs := c.JetStream.FileStore
	if fs.Enabled != nil && !*fs.Enabled {
		r.problem(d, "config.jetstream.fileStore.enabled", "must be true: acknowledged events must be on disk")
	}
	if fs.PVC.Enabled != nil && !*fs.PVC.Enabled {
		r.problem(d, "config.jetstream.fileStore.pvc.enabled", "must be true: the file store must be on a persistent volume")
	}
	if q, err := resource.ParseQuantity(fs.PVC.Size); fs.PVC.Size == "" || err != nil || q.Sign() <= 0 {
		r.problem(d, "config.jetstream.fileStore.pvc.size", "must be a storage size such as 10Gi, got %q", fs.PVC.Size)
	}
	if c.JetStream.MemoryStore.Enabled {
		r.problem(d, "config.jetstream.memoryStore.enabled", "must be false: mash's stream is a file stream")
	}
	if s, _ := c.JetStream.Merge["sync_interval"].(string); !strings.EqualFold(s, "always") {
		r.problem(d, "config.jetstream.merge.sync_interval", "must be \"always\": a JetStream acknowledgement must mean the event is on disk (got %v)", c.JetStream.Merge["sync_interval"])
	}
	if v.PodDisruptionBudget.Enabled == nil || !*v.PodDisruptionBudget.Enabled {
		r.problem(d, "podDisruptionBudget.enabled", "must be true: drains must take one server at a time")
	}
	if v.Container.Merge == nil {
		r.problem(d, "container.merge.resources", "missing: the NATS server needs requests and limits")
	} else {
		r.checkResources(d, "container.merge.resources", v.Container.Merge.Resources)
	}
}
