package main

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Backups use the Barman Cloud plugin (the CloudNativePG project's successor to the
// in-tree spec.backup.barmanObjectStore, which 1.26 deprecates): an ObjectStore names the
// bucket and its credentials, the Cluster's spec.plugins makes the plugin its WAL archiver,
// and a ScheduledBackup takes base backups through it. As with the Cluster, the types are
// modelled from the projects' Go API (cloudnative-pg api/v1 backup and scheduledbackup
// types; plugin-barman-cloud api/v1 and barman-cloud's BarmanObjectStoreConfiguration)
// with their JSON names, every field declared so typos are rejected. They were last
// compared field by field with cloudnative-pg's ScheduledBackupSpec, PluginConfiguration and
// BackupPluginConfiguration, barman-cloud's BarmanObjectStoreConfiguration (credentials
// inline), WalBackupConfiguration and DataBackupConfiguration, and the plugin's
// ObjectStoreSpec, as released in August 2026; the enums checked below are theirs.

// barmanPlugin is the Barman Cloud plugin's name in spec.plugins and pluginConfiguration.
const barmanPlugin = "barman-cloud.cloudnative-pg.io"

// CNPGPluginConfiguration is one entry of the Cluster's spec.plugins.
type CNPGPluginConfiguration struct {
	Name          string            `json:"name"`
	Enabled       *bool             `json:"enabled,omitempty"`
	IsWALArchiver *bool             `json:"isWALArchiver,omitempty"`
	Parameters    map[string]string `json:"parameters,omitempty"`
}

// CNPGScheduledBackup is postgresql.cnpg.io/v1 ScheduledBackup.
type CNPGScheduledBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CNPGScheduledBackupSpec `json:"spec"`
	Status            json.RawMessage         `json:"status,omitempty"`
}

// CNPGScheduledBackupSpec is the ScheduledBackup's spec.
type CNPGScheduledBackupSpec struct {
	Suspend              *bool                          `json:"suspend,omitempty"`
	Immediate            *bool                          `json:"immediate,omitempty"`
	Schedule             string                         `json:"schedule"`
	Cluster              corev1.LocalObjectReference    `json:"cluster"`
	BackupOwnerReference string                         `json:"backupOwnerReference,omitempty"`
	Target               string                         `json:"target,omitempty"`
	Method               string                         `json:"method,omitempty"`
	PluginConfiguration  *CNPGBackupPluginConfiguration `json:"pluginConfiguration,omitempty"`
	Online               *bool                          `json:"online,omitempty"`
	OnlineConfiguration  json.RawMessage                `json:"onlineConfiguration,omitempty"`
}

// CNPGBackupPluginConfiguration is spec.pluginConfiguration of a (Scheduled)Backup.
type CNPGBackupPluginConfiguration struct {
	Name       string            `json:"name"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// BarmanObjectStore is barmancloud.cnpg.io/v1 ObjectStore.
type BarmanObjectStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BarmanObjectStoreSpec `json:"spec"`
	Status            json.RawMessage       `json:"status,omitempty"`
}

// BarmanObjectStoreSpec is the ObjectStore's spec.
type BarmanObjectStoreSpec struct {
	Configuration                BarmanObjectStoreConfiguration `json:"configuration"`
	RetentionPolicy              string                         `json:"retentionPolicy,omitempty"`
	InstanceSidecarConfiguration json.RawMessage                `json:"instanceSidecarConfiguration,omitempty"`
}

// BarmanObjectStoreConfiguration is where and how Barman stores base backups and WAL.
type BarmanObjectStoreConfiguration struct {
	S3Credentials     *BarmanS3Credentials      `json:"s3Credentials,omitempty"`
	AzureCredentials  json.RawMessage           `json:"azureCredentials,omitempty"`
	GoogleCredentials json.RawMessage           `json:"googleCredentials,omitempty"`
	EndpointURL       string                    `json:"endpointURL,omitempty"`
	EndpointCA        *corev1.SecretKeySelector `json:"endpointCA,omitempty"`
	DestinationPath   string                    `json:"destinationPath"`
	ServerName        string                    `json:"serverName,omitempty"`
	Wal               *BarmanWalConfiguration   `json:"wal,omitempty"`
	Data              *BarmanDataConfiguration  `json:"data,omitempty"`
	Tags              map[string]string         `json:"tags,omitempty"`
	HistoryTags       map[string]string         `json:"historyTags,omitempty"`
}

// BarmanS3Credentials are the S3 (here MinIO) credentials, read from a Secret.
type BarmanS3Credentials struct {
	AccessKeyIDReference     *corev1.SecretKeySelector `json:"accessKeyId,omitempty"`
	SecretAccessKeyReference *corev1.SecretKeySelector `json:"secretAccessKey,omitempty"`
	RegionReference          *corev1.SecretKeySelector `json:"region,omitempty"`
	SessionToken             *corev1.SecretKeySelector `json:"sessionToken,omitempty"`
	InheritFromIAMRole       bool                      `json:"inheritFromIAMRole,omitempty"`
}

// BarmanWalConfiguration is how WAL segments are archived.
type BarmanWalConfiguration struct {
	Compression                  string   `json:"compression,omitempty"`
	Encryption                   string   `json:"encryption,omitempty"`
	MaxParallel                  int      `json:"maxParallel,omitempty"`
	ArchiveAdditionalCommandArgs []string `json:"archiveAdditionalCommandArgs,omitempty"`
	RestoreAdditionalCommandArgs []string `json:"restoreAdditionalCommandArgs,omitempty"`
}

// BarmanDataConfiguration is how base backups are taken.
type BarmanDataConfiguration struct {
	Compression                  string   `json:"compression,omitempty"`
	Encryption                   string   `json:"encryption,omitempty"`
	Jobs                         *int32   `json:"jobs,omitempty"`
	ImmediateCheckpoint          bool     `json:"immediateCheckpoint,omitempty"`
	AdditionalCommandArgs        []string `json:"additionalCommandArgs,omitempty"`
	RestoreAdditionalCommandArgs []string `json:"restoreAdditionalCommandArgs,omitempty"`
}

// checkBackups requires every mash Cluster to archive its WAL through the Barman Cloud
// plugin to an ObjectStore in the manifests, with credentials from a Secret, and a valid
// ScheduledBackup through the same plugin: without both, a lost volume loses referrals.
func (r *Report) checkBackups() {
	stores := map[string]*BarmanObjectStore{} // namespace/name
	scheduled := map[string][]*Doc{}          // namespace/cluster
	for _, d := range r.Docs {
		switch o := d.Obj.(type) {
		case *BarmanObjectStore:
			stores[o.Namespace+"/"+o.Name] = o
			r.checkObjectStore(d, o)
		case *CNPGScheduledBackup:
			scheduled[o.Namespace+"/"+o.Spec.Cluster.Name] = append(scheduled[o.Namespace+"/"+o.Spec.Cluster.Name], d)
			r.checkScheduledBackup(d, o)
		}
	}
	for _, d := range r.Docs {
		cl, ok := d.Obj.(*CNPGCluster)
		if !ok {
			continue
		}
		if len(cl.Spec.Backup) > 0 && string(cl.Spec.Backup) != "null" {
			r.problem(d, "spec.backup", "use the Barman Cloud plugin (spec.plugins and an ObjectStore), not the deprecated in-tree backup section")
		}
		var archiver *CNPGPluginConfiguration
		var plugins []CNPGPluginConfiguration
		if len(cl.Spec.Plugins) > 0 && !r.strict(d, cl.Spec.Plugins, &plugins) {
			continue
		}
		for i := range plugins {
			if p := &plugins[i]; p.Name == barmanPlugin && p.IsWALArchiver != nil && *p.IsWALArchiver && (p.Enabled == nil || *p.Enabled) {
				archiver = p
			}
		}
		if archiver == nil {
			r.problem(d, "spec.plugins", "no enabled %s plugin with isWALArchiver: true: WAL must be archived to object storage", barmanPlugin)
		} else if name := archiver.Parameters["barmanObjectName"]; stores[cl.Namespace+"/"+name] == nil {
			r.problem(d, "spec.plugins", "parameters.barmanObjectName %q: no ObjectStore %s/%s in the manifests", name, cl.Namespace, name)
		}
		if len(scheduled[cl.Namespace+"/"+cl.Name]) == 0 {
			r.problem(d, "", "no ScheduledBackup for this Cluster: base backups are required for point-in-time recovery")
		}
	}
}

func (r *Report) checkObjectStore(d *Doc, o *BarmanObjectStore) {
	c := o.Spec.Configuration
	if u, err := url.Parse(c.DestinationPath); err != nil || u.Scheme != "s3" || u.Host == "" {
		r.problem(d, "spec.configuration.destinationPath", "%q: must be s3://bucket/path", c.DestinationPath)
	}
	if c.EndpointURL != "" {
		if u, err := url.Parse(c.EndpointURL); err != nil || u.Scheme != "https" {
			r.problem(d, "spec.configuration.endpointURL", "%q: must be https://, backups hold personal data", c.EndpointURL)
		}
	}
	switch s3 := c.S3Credentials; {
	case s3 == nil:
		r.problem(d, "spec.configuration.s3Credentials", "required: accessKeyId and secretAccessKey from a Secret (or inheritFromIAMRole)")
	case s3.InheritFromIAMRole:
	default:
		for field, ref := range map[string]*corev1.SecretKeySelector{"accessKeyId": s3.AccessKeyIDReference, "secretAccessKey": s3.SecretAccessKeyReference} {
			if ref == nil || ref.Name == "" || ref.Key == "" {
				r.problem(d, "spec.configuration.s3Credentials."+field, "required: a Secret name and key")
			}
		}
	}
	if c.Wal == nil || c.Wal.Compression == "" {
		r.problem(d, "spec.configuration.wal.compression", "required: compress archived WAL")
	} else if !walCompressions[c.Wal.Compression] {
		r.problem(d, "spec.configuration.wal.compression", "%q: must be one of bzip2, gzip, lz4, snappy, xz, zstd", c.Wal.Compression)
	}
	if c.Data != nil && c.Data.Compression != "" && !dataCompressions[c.Data.Compression] {
		r.problem(d, "spec.configuration.data.compression", "%q: must be one of bzip2, gzip, lz4, snappy", c.Data.Compression)
	}
	if c.ServerName != "" {
		// The plugin ignores it; a Cluster names its folder with the serverName parameter.
		r.problem(d, "spec.configuration.serverName", "must be empty with the Barman Cloud plugin: set parameters.serverName in the Cluster's spec.plugins entry instead")
	}
	if o.Spec.RetentionPolicy == "" {
		r.problem(d, "spec.retentionPolicy", "required: how long backups are kept (e.g. 30d)")
	} else if !retentionRE.MatchString(o.Spec.RetentionPolicy) {
		r.problem(d, "spec.retentionPolicy", "%q: must be a number of days, weeks or months (30d, 4w, 3m)", o.Spec.RetentionPolicy)
	}
}

func (r *Report) checkScheduledBackup(d *Doc, o *CNPGScheduledBackup) {
	s := o.Spec
	if f := strings.Fields(s.Schedule); len(f) != 6 || !cronFieldsRE.MatchString(s.Schedule) {
		r.problem(d, "spec.schedule", "%q: must be a six-field cron schedule, seconds first (\"0 0 2 * * *\" is 02:00 daily)", s.Schedule)
	}
	if s.Cluster.Name == "" {
		r.problem(d, "spec.cluster.name", "required")
	} else {
		found := false
		for _, c := range r.Docs {
			if cl, ok := c.Obj.(*CNPGCluster); ok && cl.Namespace == o.Namespace && cl.Name == s.Cluster.Name {
				found = true
			}
		}
		if !found {
			r.problem(d, "spec.cluster.name", "Cluster %s/%s is not in the manifests", o.Namespace, s.Cluster.Name)
		}
	}
	if s.Method != "plugin" || s.PluginConfiguration == nil || s.PluginConfiguration.Name != barmanPlugin {
		r.problem(d, "spec.method", "must be plugin with pluginConfiguration.name %s, the Cluster's WAL archiver", barmanPlugin)
	}
	if s.Suspend != nil && *s.Suspend {
		r.problem(d, "spec.suspend", "true: a suspended schedule takes no backups")
	}
	switch s.BackupOwnerReference {
	case "", "none", "self", "cluster":
	default:
		r.problem(d, "spec.backupOwnerReference", "%q: must be none, self or cluster", s.BackupOwnerReference)
	}
}

// walCompressions and dataCompressions are the values barman-cloud's API admits
// (WalBackupConfiguration and DataBackupConfiguration compression enums).
var (
	walCompressions  = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true, "xz": true, "zstd": true}
	dataCompressions = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true}
)

// cronFieldsRE admits the characters of cron fields (numbers, *, /, ranges, lists, names, ?).
var cronFieldsRE = regexp.MustCompile(`^[0-9A-Za-z*/,?\- ]+$`)

// retentionRE is Barman's retention policy: a number of days, weeks or months.
var retentionRE = regexp.MustCompile(`^[1-9][0-9]*[dwm]$`)
