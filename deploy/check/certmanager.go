package main

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cert-manager API types (github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1)
// pull in most of cert-manager as a Go module, so Certificates and (Cluster)Issuers are
// decoded strictly into the model below, written from that package's types.go,
// types_certificate.go and types_issuer.go with the same JSON names. Every field of
// CertificateSpec and IssuerSpec is declared (so any valid key is accepted and any typo
// rejected); the nested types this deployment uses (issuerRef, privateKey, ca, selfSigned)
// are declared in full, the others are accepted as raw JSON and not checked further.

// CMCertificate is cert-manager.io/v1 Certificate.
type CMCertificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CMCertificateSpec `json:"spec"`
	Status            json.RawMessage   `json:"status,omitempty"`
}

// CMCertificateSpec is every field of the real CertificateSpec.
type CMCertificateSpec struct {
	Subject                 json.RawMessage       `json:"subject,omitempty"`
	LiteralSubject          string                `json:"literalSubject,omitempty"`
	CommonName              string                `json:"commonName,omitempty"`
	Duration                *metav1.Duration      `json:"duration,omitempty"`
	RenewBefore             *metav1.Duration      `json:"renewBefore,omitempty"`
	RenewBeforePercentage   *int32                `json:"renewBeforePercentage,omitempty"`
	DNSNames                []string              `json:"dnsNames,omitempty"`
	IPAddresses             []string              `json:"ipAddresses,omitempty"`
	URIs                    []string              `json:"uris,omitempty"`
	OtherNames              json.RawMessage       `json:"otherNames,omitempty"`
	EmailAddresses          []string              `json:"emailAddresses,omitempty"`
	SecretName              string                `json:"secretName"`
	SecretTemplate          json.RawMessage       `json:"secretTemplate,omitempty"`
	Keystores               json.RawMessage       `json:"keystores,omitempty"`
	IssuerRef               CMObjectReference     `json:"issuerRef"`
	IsCA                    bool                  `json:"isCA,omitempty"`
	Usages                  []string              `json:"usages,omitempty"`
	PrivateKey              *CMCertificatePrivKey `json:"privateKey,omitempty"`
	SignatureAlgorithm      string                `json:"signatureAlgorithm,omitempty"`
	EncodeUsagesInRequest   *bool                 `json:"encodeUsagesInRequest,omitempty"`
	RevisionHistoryLimit    *int32                `json:"revisionHistoryLimit,omitempty"`
	AdditionalOutputFormats json.RawMessage       `json:"additionalOutputFormats,omitempty"`
	NameConstraints         json.RawMessage       `json:"nameConstraints,omitempty"`
}

// CMObjectReference names the issuer of a Certificate.
type CMObjectReference struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// CMCertificatePrivKey is the Certificate's private key settings.
type CMCertificatePrivKey struct {
	RotationPolicy string `json:"rotationPolicy,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
}

// CMIssuer is cert-manager.io/v1 Issuer or ClusterIssuer (the same spec).
type CMIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CMIssuerSpec    `json:"spec"`
	Status            json.RawMessage `json:"status,omitempty"`
}

// CMIssuerSpec is every field of the real IssuerConfig: exactly one should be set.
type CMIssuerSpec struct {
	ACME       json.RawMessage     `json:"acme,omitempty"`
	CA         *CMCAIssuer         `json:"ca,omitempty"`
	Vault      json.RawMessage     `json:"vault,omitempty"`
	SelfSigned *CMSelfSignedIssuer `json:"selfSigned,omitempty"`
	Venafi     json.RawMessage     `json:"venafi,omitempty"`
}

// CMCAIssuer signs with the key pair in a Secret.
type CMCAIssuer struct {
	SecretName             string   `json:"secretName"`
	CRLDistributionPoints  []string `json:"crlDistributionPoints,omitempty"`
	OCSPServers            []string `json:"ocspServers,omitempty"`
	IssuingCertificateURLs []string `json:"issuingCertificateURLs,omitempty"`
}

// CMSelfSignedIssuer signs each certificate with its own key.
type CMSelfSignedIssuer struct {
	CRLDistributionPoints []string `json:"crlDistributionPoints,omitempty"`
}
