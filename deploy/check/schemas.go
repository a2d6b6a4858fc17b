package main

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kustomize "sigs.k8s.io/kustomize/api/types"
)

// schemas maps "apiVersion/kind" to a new object of the real API type the document must
// decode into. A kind missing here is reported rather than skipped, so nothing goes
// unchecked by accident.
var schemas = map[string]func() any{
	"v1/Namespace":                                  func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                             func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                                  func() any { return &batchv1.Job{} },
	"batch/v1/CronJob":                              func() any { return &batchv1.CronJob{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":            func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":                  func() any { return &networkingv1.Ingress{} },
	"postgresql.cnpg.io/v1/Cluster":                 func() any { return &CNPGCluster{} },
	"postgresql.cnpg.io/v1/ScheduledBackup":         func() any { return &CNPGScheduledBackup{} },
	"barmancloud.cnpg.io/v1/ObjectStore":            func() any { return &BarmanObjectStore{} },
	"apps/v1/StatefulSet":                           func() any { return &appsv1.StatefulSet{} },
	"cert-manager.io/v1/Certificate":                func() any { return &CMCertificate{} },
	"cert-manager.io/v1/Issuer":                     func() any { return &CMIssuer{} },
	"cert-manager.io/v1/ClusterIssuer":              func() any { return &CMIssuer{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomize.Kustomization{} },
}
