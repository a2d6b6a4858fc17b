package main

import "testing"

// Each backup rule fails the check, naming the object and the field.
func TestBackupPolicy(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new string
		want                 []string
	}{
		{"no WAL archiving", "postgres/cluster.yaml", "      isWALArchiver: true\n", "      isWALArchiver: false\n",
			[]string{"Cluster mash/mash-database", "spec.plugins", "isWALArchiver: true"}},
		{"archiver names no object store", "postgres/cluster.yaml", "        barmanObjectName: mash-backups\n", "        barmanObjectName: mash-backup\n",
			[]string{"Cluster mash/mash-database", "spec.plugins", "no ObjectStore mash/mash-backup in the manifests"}},
		{"plugin entry misspelt", "postgres/cluster.yaml", "      isWALArchiver: true\n", "      isWalArchiver: true\n",
			[]string{"Cluster mash/mash-database", "isWalArchiver", "unknown field"}},
		{"no scheduled backup", "postgres/backup.yaml", "    name: mash-database\n", "    name: mash-db\n",
			[]string{"Cluster mash/mash-database", "no ScheduledBackup"}},
		{"scheduled backup of an unknown cluster", "postgres/backup.yaml", "    name: mash-database\n", "    name: mash-db\n",
			[]string{"ScheduledBackup mash/mash-database-nightly", "spec.cluster.name", "Cluster mash/mash-db is not in the manifests"}},
		{"five-field schedule", "postgres/backup.yaml", `schedule: "0 0 2 * * *"`, `schedule: "0 2 * * *"`,
			[]string{"ScheduledBackup mash/mash-database-nightly", "spec.schedule", "six-field"}},
		{"backup not through the plugin", "postgres/backup.yaml", "  method: plugin\n", "  method: barmanObjectStore\n",
			[]string{"ScheduledBackup mash/mash-database-nightly", "spec.method"}},
		{"suspended schedule", "postgres/backup.yaml", "  immediate: true\n", "  immediate: true\n  suspend: true\n",
			[]string{"ScheduledBackup mash/mash-database-nightly", "spec.suspend"}},
		{"object store in clear", "postgres/backup.yaml", "https://minio.minio.svc:9000", "http://minio.minio.svc:9000",
			[]string{"ObjectStore mash/mash-backups", "spec.configuration.endpointURL", "https://"}},
		{"credentials missing", "postgres/backup.yaml", "      secretAccessKey:\n        name: mash-backup-s3\n        key: ACCESS_SECRET_KEY\n", "",
			[]string{"ObjectStore mash/mash-backups", "s3Credentials.secretAccessKey", "Secret name and key"}},
		{"no retention", "postgres/backup.yaml", "  retentionPolicy: 30d\n", "",
			[]string{"ObjectStore mash/mash-backups", "spec.retentionPolicy", "required"}},
		{"bad retention", "postgres/backup.yaml", "  retentionPolicy: 30d\n", "  retentionPolicy: 30 days\n",
			[]string{"ObjectStore mash/mash-backups", "spec.retentionPolicy", "number of days"}},
		{"uncompressed WAL", "postgres/backup.yaml", "    wal:\n      compression: gzip\n", "    wal:\n",
			[]string{"ObjectStore mash/mash-backups", "spec.configuration.wal.compression"}},
		{"unknown WAL compression", "postgres/backup.yaml", "    wal:\n      compression: gzip\n", "    wal:\n      compression: zip\n",
			[]string{"ObjectStore mash/mash-backups", "spec.configuration.wal.compression", "\"zip\""}},
		{"data compression barman cannot take", "postgres/backup.yaml", "    data:\n      compression: gzip\n", "    data:\n      compression: zstd\n",
			[]string{"ObjectStore mash/mash-backups", "spec.configuration.data.compression", "\"zstd\""}},
		{"server name on the object store", "postgres/backup.yaml", "    destinationPath: s3://mash-backups/\n", "    destinationPath: s3://mash-backups/\n    serverName: mash\n",
			[]string{"ObjectStore mash/mash-backups", "spec.configuration.serverName", "parameters.serverName"}},
		{"object store field misspelt", "postgres/backup.yaml", "    destinationPath: s3://mash-backups/\n", "    destinationPth: s3://mash-backups/\n",
			[]string{"ObjectStore mash/mash-backups", "destinationPth", "unknown field"}},
		{"in-tree backup section", "postgres/cluster.yaml", "  plugins:\n", "  backup:\n    retentionPolicy: 30d\n  plugins:\n",
			[]string{"Cluster mash/mash-database", "spec.backup", "Barman Cloud plugin"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, c.file, c.old, c.new)), c.want...)
		})
	}
}
