package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Permission is one thing a caller may do. Every service's handlers and the console's menus
// read who holds it from one table (permissionRoles), so a menu never offers what the
// service behind it refuses.
type Permission string

// The permissions. Administrators run the system (credentials, accounts, the agency
// directory, deliveries, health) and take no part in decisions about children: they hold
// no permission that reads a child's record or the trail of one.
const (
	SubmitReferrals Permission = "submit referrals"
	ReadReferrals   Permission = "read referrals"

	ReadQueue   Permission = "read the queue"
	ReadCases   Permission = "read cases"
	ClaimCases  Permission = "claim and release cases"
	AssignCases Permission = "assign cases"
	HoldCases   Permission = "place and lift legal holds on cases"
	// EraseCases destroys a closed case's key and every service's clear copy of it.
	EraseCases Permission = "erase cases"
	// SearchRecords finds children and referrals by name, date of birth, NHS number,
	// postcode or reference; CorrectChildRecords links, merges and unlinks child records.
	SearchRecords        Permission = "search children and referrals"
	CorrectChildRecords  Permission = "link, merge and unlink child records"
	DecideCases          Permission = "decide, record strategy discussions and close cases"
	RequestInformation   Permission = "request information from agencies"
	ReadInformation      Permission = "list information requests"
	AnswerInformation    Permission = "answer information requests"
	RaiseDisagreements   Permission = "raise and escalate disagreements"
	ReadDisagreements    Permission = "list disagreements"
	ResolveDisagreements Permission = "resolve disagreements"
	ReadDashboard        Permission = "read management information"
	// ReviewQuality samples decided cases and records quality assurance reviews of them
	// (never of the reviewer's own decision: triage checks).
	ReviewQuality     Permission = "review decided cases for quality assurance"
	ReadDecisions     Permission = "read decisions"
	EvaluateReferrals Permission = "evaluate referrals"
	ReadPacks         Permission = "read rule packs"
	ValidatePacks     Permission = "validate rule packs"
	ManagePacks       Permission = "upload, replay and activate rule packs"
	ReadDirectory     Permission = "read the agency directory"
	ChangeDirectory   Permission = "change the agency directory"
	// DecideDirectory approves or rejects a proposed change to where an agency's
	// notifications go: the second pair of eyes, never on the proposer's own (notify checks).
	DecideDirectory      Permission = "approve or reject proposed changes to the agency directory"
	ReadNotifications    Permission = "read notifications"
	RetryNotifications   Permission = "retry notifications"
	AcknowledgeOnBehalf  Permission = "acknowledge notifications for an agency"
	ReadAuditTrails      Permission = "read audit trails"
	ReadAuditCheckpoints Permission = "read audit checkpoints and consistency proofs"
	// ReadCaseAccess is who read one referral (the access trail on the case page): hub
	// staff working the case see who else looked at it; a child's whole access trail, and
	// every other query of the trail, stays with auditors (ReadAuditTrails).
	ReadCaseAccess Permission = "read who accessed a referral"
	// AuthoriseSharing is a manager's recorded judgement that a case may be shared without
	// the family's consent (and its revocation); RecordConsent records a change in consent.
	AuthoriseSharing Permission = "authorise sharing without consent"
	RecordConsent    Permission = "record consent"
	// UsePartnerView is the console's partner view: what the hub sent the person's own
	// agency (a partner's other permissions reach only that agency's records).
	UsePartnerView Permission = "use the partner view"
	// ExportSubjectAccess answers a subject access request: everything held about a child,
	// gathered from every service into one document, with a reason, itself on the trail.
	ExportSubjectAccess Permission = "export everything held about a child (subject access)"
)

// permissionRoles is the one table of who may do what. A referrer's permissions, and a
// partner's (a person of a partner agency, in the console), reach only its own agency's
// records, and every hub role's only the partnerships it serves; the
// services apply those scopes.
var permissionRoles = map[Permission][]Role{
	// Practitioners record referrals taken by telephone.
	SubmitReferrals: {RoleReferrer, RolePractitioner},
	ReadReferrals:   {RoleReferrer, RolePartner, RolePractitioner, RoleManager, RoleAuditor},

	ReadQueue:            {RolePractitioner, RoleManager},
	ReadCases:            {RolePractitioner, RoleManager},
	ClaimCases:           {RolePractitioner, RoleManager},
	AssignCases:          {RoleManager},
	HoldCases:            {RoleManager},
	EraseCases:           {RoleManager},
	SearchRecords:        {RolePractitioner, RoleManager},
	CorrectChildRecords:  {RolePractitioner, RoleManager},
	DecideCases:          {RolePractitioner, RoleManager},
	RequestInformation:   {RolePractitioner, RoleManager},
	ReadInformation:      {RoleReferrer, RolePartner, RolePractitioner, RoleManager, RoleAuditor},
	AnswerInformation:    {RoleReferrer, RolePartner, RolePractitioner, RoleManager},
	RaiseDisagreements:   {RoleReferrer, RolePartner, RolePractitioner, RoleManager},
	ReadDisagreements:    {RoleReferrer, RolePartner, RolePractitioner, RoleManager, RoleAuditor},
	ResolveDisagreements: {RolePractitioner, RoleManager},
	ReadDashboard:        {RoleManager, RoleAuditor},
	ReviewQuality:        {RoleManager},
	ReadDecisions:        {RolePractitioner, RoleManager, RoleAuditor},
	EvaluateReferrals:    {RolePractitioner, RoleManager},
	ReadPacks:            {RolePractitioner, RoleManager, RoleAuditor, RoleAdmin},
	ValidatePacks:        {RolePractitioner, RoleManager, RoleAdmin},
	ManagePacks:          {RoleManager},
	ReadDirectory:        {RolePractitioner, RoleManager, RoleAuditor, RoleAdmin},
	ChangeDirectory:      {RoleManager, RoleAdmin},
	// Administrators may propose a change to where data goes, never approve one.
	DecideDirectory:      {RoleManager},
	ReadNotifications:    {RoleReferrer, RolePartner, RolePractitioner, RoleManager, RoleAuditor, RoleAdmin},
	RetryNotifications:   {RoleManager, RoleAdmin},
	AcknowledgeOnBehalf:  {RoleManager},
	ReadAuditTrails:      {RoleAuditor},
	ReadAuditCheckpoints: {RoleAuditor, RoleAdmin},
	ReadCaseAccess:       {RolePractitioner, RoleManager, RoleAuditor},
	AuthoriseSharing:     {RoleManager},
	RecordConsent:        {RolePractitioner, RoleManager},
	UsePartnerView:       {RolePartner},
	// The hub's managers answer subject access requests; auditors audit, and hold no
	// casework, of which an export is mostly made.
	ExportSubjectAccess: {RoleManager},
}

// Roles returns the roles that hold p; none for a permission the table does not know.
func (p Permission) Roles() []Role { return slices.Clone(permissionRoles[p]) }

// Permissions lists every permission, sorted.
func Permissions() []Permission {
	out := make([]Permission, 0, len(permissionRoles))
	for p := range permissionRoles {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Can reports whether the identity's role holds p.
func (id Identity) Can(p Permission) bool { return slices.Contains(permissionRoles[p], id.Role) }

// Denial explains why id may not do p, naming the roles that may.
func (id Identity) Denial(p Permission) string {
	names := make([]string, 0, len(permissionRoles[p]))
	for _, r := range permissionRoles[p] {
		names = append(names, string(r))
	}
	return fmt.Sprintf("role %s may not %s; it needs one of: %s", id.Role, p, strings.Join(names, ", "))
}
