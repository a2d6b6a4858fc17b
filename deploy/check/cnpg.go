package main

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The CloudNativePG API types (github.com/cloudnative-pg/cloudnative-pg/api/v1) could not
// be fetched as a Go module in this workplace, so the Cluster is decoded strictly into the
// model below, written from that package's api/v1/cluster_types.go. The model keeps the
// JSON names of the real types: every field of ClusterSpec is declared (so any valid
// top-level key is accepted and any typo rejected), and the nested types this deployment
// uses (postgresql, synchronous replication, bootstrap.initdb, storage, affinity,
// monitoring) are declared in full; other nested values are accepted as raw JSON and not
// checked further. Core types (resources, env, tolerations, ...) are the real k8s.io/api
// types.

// CNPGCluster is postgresql.cnpg.io/v1 Cluster.
type CNPGCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CNPGClusterSpec `json:"spec"`
	Status            json.RawMessage `json:"status,omitempty"`
}

// CNPGClusterSpec is the Cluster's spec: every field of the real ClusterSpec.
type CNPGClusterSpec struct {
	Description               string                            `json:"description,omitempty"`
	InheritedMetadata         json.RawMessage                   `json:"inheritedMetadata,omitempty"`
	ImageName                 string                            `json:"imageName,omitempty"`
	ImageCatalogRef           json.RawMessage                   `json:"imageCatalogRef,omitempty"`
	ImagePullPolicy           corev1.PullPolicy                 `json:"imagePullPolicy,omitempty"`
	SchedulerName             string                            `json:"schedulerName,omitempty"`
	PostgresUID               int64                             `json:"postgresUID,omitempty"`
	PostgresGID               int64                             `json:"postgresGID,omitempty"`
	Instances                 int                               `json:"instances"`
	MinSyncReplicas           int                               `json:"minSyncReplicas,omitempty"`
	MaxSyncReplicas           int                               `json:"maxSyncReplicas,omitempty"`
	PostgresConfiguration     CNPGPostgresConfiguration         `json:"postgresql,omitempty"`
	ReplicationSlots          json.RawMessage                   `json:"replicationSlots,omitempty"`
	Bootstrap                 *CNPGBootstrapConfiguration       `json:"bootstrap,omitempty"`
	ReplicaCluster            json.RawMessage                   `json:"replica,omitempty"`
	SuperuserSecret           *corev1.LocalObjectReference      `json:"superuserSecret,omitempty"`
	EnableSuperuserAccess     *bool                             `json:"enableSuperuserAccess,omitempty"`
	Certificates              json.RawMessage                   `json:"certificates,omitempty"`
	ImagePullSecrets          []corev1.LocalObjectReference     `json:"imagePullSecrets,omitempty"`
	StorageConfiguration      CNPGStorageConfiguration          `json:"storage,omitempty"`
	ServiceAccountTemplate    json.RawMessage                   `json:"serviceAccountTemplate,omitempty"`
	WalStorage                *CNPGStorageConfiguration         `json:"walStorage,omitempty"`
	EphemeralVolumeSource     *corev1.EphemeralVolumeSource     `json:"ephemeralVolumeSource,omitempty"`
	MaxStartDelay             int32                             `json:"startDelay,omitempty"`
	MaxStopDelay              int32                             `json:"stopDelay,omitempty"`
	SmartShutdownTimeout      *int32                            `json:"smartShutdownTimeout,omitempty"`
	MaxSwitchoverDelay        int32                             `json:"switchoverDelay,omitempty"`
	FailoverDelay             int32                             `json:"failoverDelay,omitempty"`
	LivenessProbeTimeout      *int32                            `json:"livenessProbeTimeout,omitempty"`
	Affinity                  CNPGAffinityConfiguration         `json:"affinity,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	Resources                 corev1.ResourceRequirements       `json:"resources,omitempty"`
	EphemeralVolumesSizeLimit json.RawMessage                   `json:"ephemeralVolumesSizeLimit,omitempty"`
	PriorityClassName         string                            `json:"priorityClassName,omitempty"`
	PrimaryUpdateStrategy     string                            `json:"primaryUpdateStrategy,omitempty"`
	PrimaryUpdateMethod       string                            `json:"primaryUpdateMethod,omitempty"`
	Backup                    json.RawMessage                   `json:"backup,omitempty"`
	NodeMaintenanceWindow     json.RawMessage                   `json:"nodeMaintenanceWindow,omitempty"`
	Monitoring                *CNPGMonitoringConfiguration      `json:"monitoring,omitempty"`
	ExternalClusters          json.RawMessage                   `json:"externalClusters,omitempty"`
	LogLevel                  string                            `json:"logLevel,omitempty"`
	ProjectedVolumeTemplate   *corev1.ProjectedVolumeSource     `json:"projectedVolumeTemplate,omitempty"`
	Env                       []corev1.EnvVar                   `json:"env,omitempty"`
	EnvFrom                   []corev1.EnvFromSource            `json:"envFrom,omitempty"`
	Managed                   *CNPGManagedConfiguration         `json:"managed,omitempty"`
	SeccompProfile            *corev1.SeccompProfile            `json:"seccompProfile,omitempty"`
	PodSecurityContext        *corev1.PodSecurityContext        `json:"podSecurityContext,omitempty"`
	SecurityContext           *corev1.SecurityContext           `json:"securityContext,omitempty"`
	Tablespaces               json.RawMessage                   `json:"tablespaces,omitempty"`
	EnablePDB                 *bool                             `json:"enablePDB,omitempty"`
	Plugins                   json.RawMessage                   `json:"plugins,omitempty"`
	Probes                    json.RawMessage                   `json:"probes,omitempty"`
	PodSelectorRefs           json.RawMessage                   `json:"podSelectorRefs,omitempty"`
	ServiceAccountName        string                            `json:"serviceAccountName,omitempty"`
	PrimaryLease              json.RawMessage                   `json:"primaryLease,omitempty"`
}

// CNPGPostgresConfiguration is spec.postgresql.
type CNPGPostgresConfiguration struct {
	Parameters                    map[string]string                    `json:"parameters,omitempty"`
	Synchronous                   *CNPGSynchronousReplicaConfiguration `json:"synchronous,omitempty"`
	PgHBA                         []string                             `json:"pg_hba,omitempty"`
	PgIdent                       []string                             `json:"pg_ident,omitempty"`
	SyncReplicaElectionConstraint CNPGSyncReplicaElectionConstraints   `json:"syncReplicaElectionConstraint,omitempty"`
	AdditionalLibraries           []string                             `json:"shared_preload_libraries,omitempty"`
	LDAP                          json.RawMessage                      `json:"ldap,omitempty"`
	PgCtlTimeoutForPromotion      int32                                `json:"promotionTimeout,omitempty"`
	EnableAlterSystem             bool                                 `json:"enableAlterSystem,omitempty"`
	Extensions                    json.RawMessage                      `json:"extensions,omitempty"`
}

// CNPGSynchronousReplicaConfiguration is spec.postgresql.synchronous.
type CNPGSynchronousReplicaConfiguration struct {
	Method                     string   `json:"method"`
	Number                     int      `json:"number"`
	MaxStandbyNamesFromCluster *int     `json:"maxStandbyNamesFromCluster,omitempty"`
	StandbyNamesPre            []string `json:"standbyNamesPre,omitempty"`
	StandbyNamesPost           []string `json:"standbyNamesPost,omitempty"`
	DataDurability             string   `json:"dataDurability,omitempty"`
	FailoverQuorum             bool     `json:"failoverQuorum,omitempty"`
	NodeFailureDomainKeys      []string `json:"nodeFailureDomainKeys,omitempty"`
	PodFailureDomainKeys       []string `json:"podFailureDomainKeys,omitempty"`
}

// CNPGSyncReplicaElectionConstraints is spec.postgresql.syncReplicaElectionConstraint.
type CNPGSyncReplicaElectionConstraints struct {
	NodeLabelsAntiAffinity []string `json:"nodeLabelsAntiAffinity,omitempty"`
	Enabled                bool     `json:"enabled"`
}

// CNPGBootstrapConfiguration is spec.bootstrap.
type CNPGBootstrapConfiguration struct {
	InitDB       *CNPGBootstrapInitDB `json:"initdb,omitempty"`
	Recovery     json.RawMessage      `json:"recovery,omitempty"`
	PgBaseBackup json.RawMessage      `json:"pg_basebackup,omitempty"`
}

// CNPGBootstrapInitDB is spec.bootstrap.initdb.
type CNPGBootstrapInitDB struct {
	Database                   string                       `json:"database,omitempty"`
	Owner                      string                       `json:"owner,omitempty"`
	Secret                     *corev1.LocalObjectReference `json:"secret,omitempty"`
	Options                    []string                     `json:"options,omitempty"`
	DataChecksums              *bool                        `json:"dataChecksums,omitempty"`
	Encoding                   string                       `json:"encoding,omitempty"`
	LocaleCollate              string                       `json:"localeCollate,omitempty"`
	LocaleCType                string                       `json:"localeCType,omitempty"`
	Locale                     string                       `json:"locale,omitempty"`
	LocaleProvider             string                       `json:"localeProvider,omitempty"`
	IcuLocale                  string                       `json:"icuLocale,omitempty"`
	IcuRules                   string                       `json:"icuRules,omitempty"`
	BuiltinLocale              string                       `json:"builtinLocale,omitempty"`
	WalSegmentSize             int                          `json:"walSegmentSize,omitempty"`
	PostInitSQL                []string                     `json:"postInitSQL,omitempty"`
	PostInitApplicationSQL     []string                     `json:"postInitApplicationSQL,omitempty"`
	PostInitTemplateSQL        []string                     `json:"postInitTemplateSQL,omitempty"`
	Import                     json.RawMessage              `json:"import,omitempty"`
	PostInitApplicationSQLRefs json.RawMessage              `json:"postInitApplicationSQLRefs,omitempty"`
	PostInitTemplateSQLRefs    json.RawMessage              `json:"postInitTemplateSQLRefs,omitempty"`
	PostInitSQLRefs            json.RawMessage              `json:"postInitSQLRefs,omitempty"`
}

// CNPGStorageConfiguration is spec.storage and spec.walStorage.
type CNPGStorageConfiguration struct {
	StorageClass                  *string                           `json:"storageClass,omitempty"`
	Size                          string                            `json:"size,omitempty"`
	ResizeInUseVolumes            *bool                             `json:"resizeInUseVolumes,omitempty"`
	PersistentVolumeClaimTemplate *corev1.PersistentVolumeClaimSpec `json:"pvcTemplate,omitempty"`
}

// CNPGAffinityConfiguration is spec.affinity.
type CNPGAffinityConfiguration struct {
	EnablePodAntiAffinity     *bool                   `json:"enablePodAntiAffinity,omitempty"`
	TopologyKey               string                  `json:"topologyKey,omitempty"`
	NodeSelector              map[string]string       `json:"nodeSelector,omitempty"`
	NodeAffinity              *corev1.NodeAffinity    `json:"nodeAffinity,omitempty"`
	Tolerations               []corev1.Toleration     `json:"tolerations,omitempty"`
	PodAntiAffinityType       string                  `json:"podAntiAffinityType,omitempty"`
	AdditionalPodAntiAffinity *corev1.PodAntiAffinity `json:"additionalPodAntiAffinity,omitempty"`
	AdditionalPodAffinity     *corev1.PodAffinity     `json:"additionalPodAffinity,omitempty"`
}

// CNPGMonitoringConfiguration is spec.monitoring.
type CNPGMonitoringConfiguration struct {
	DisableDefaultQueries          *bool                           `json:"disableDefaultQueries,omitempty"`
	CustomQueriesConfigMap         []corev1.ConfigMapKeySelector   `json:"customQueriesConfigMap,omitempty"`
	CustomQueriesSecret            []corev1.SecretKeySelector      `json:"customQueriesSecret,omitempty"`
	EnablePodMonitor               bool                            `json:"enablePodMonitor,omitempty"`
	TLSConfig                      *CNPGMonitoringTLSConfiguration `json:"tls,omitempty"`
	PodMonitorMetricRelabelConfigs json.RawMessage                 `json:"podMonitorMetricRelabelings,omitempty"`
	PodMonitorRelabelConfigs       json.RawMessage                 `json:"podMonitorRelabelings,omitempty"`
	MetricsQueriesTTL              *metav1.Duration                `json:"metricsQueriesTTL,omitempty"`
}

// CNPGMonitoringTLSConfiguration is spec.monitoring.tls.
type CNPGMonitoringTLSConfiguration struct {
	Enabled bool `json:"enabled,omitempty"`
}

// CNPGManagedConfiguration is spec.managed.
type CNPGManagedConfiguration struct {
	Roles    []CNPGRoleConfiguration `json:"roles,omitempty"`
	Services json.RawMessage         `json:"services,omitempty"`
}

// CNPGRoleConfiguration is one of spec.managed.roles.
type CNPGRoleConfiguration struct {
	Name            string                       `json:"name"`
	Comment         string                       `json:"comment,omitempty"`
	Ensure          string                       `json:"ensure,omitempty"`
	PasswordSecret  *corev1.LocalObjectReference `json:"passwordSecret,omitempty"`
	ConnectionLimit int64                        `json:"connectionLimit,omitempty"`
	ValidUntil      *metav1.Time                 `json:"validUntil,omitempty"`
	InRoles         []string                     `json:"inRoles,omitempty"`
	Inherit         *bool                        `json:"inherit,omitempty"`
	DisablePassword bool                         `json:"disablePassword,omitempty"`
	Superuser       bool                         `json:"superuser,omitempty"`
	CreateDB        bool                         `json:"createdb,omitempty"`
	CreateRole      bool                         `json:"createrole,omitempty"`
	Login           bool                         `json:"login,omitempty"`
	Replication     bool                         `json:"replication,omitempty"`
	BypassRLS       bool                         `json:"bypassrls,omitempty"`
}
