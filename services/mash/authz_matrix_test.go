package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/testport"
	"github.com/mash-hub/mash/services/audit"
	auditstore "github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
	"github.com/mash-hub/mash/services/console"
	consolestore "github.com/mash-hub/mash/services/console/store"
	intakestore "github.com/mash-hub/mash/services/intake/store"
	notifystore "github.com/mash-hub/mash/services/notify/store"
	"github.com/mash-hub/mash/services/rules/packs"
	rulesstore "github.com/mash-hub/mash/services/rules/store"
	triagestore "github.com/mash-hub/mash/services/triage/store"
)

// Role sets of the matrix. "none" is a caller without a credential.
const (
	ref = 1 << iota
	pra
	man
	aud
	adm
	par    // a partner agency's person, signed in to the console's partner view
	public // needs no credential at all
)

const (
	everyone = ref | par | pra | man | aud | adm
	staff    = pra | man | aud | adm
	hub      = pra | man
	// agency is an agency's own caller: its system, or its person in the partner view.
	agency = ref | par
)

// authzMatrix is the one table of who may call what: every gRPC method, HTTP route and
// console page the binary serves, with the roles allowed. The test fails on any endpoint
// missing from it and on any allow or refusal it does not list; a new route is one line.
var authzMatrix = map[string]int{
	// intake
	"/mash.intake.v1.IntakeService/SubmitReferral": ref | pra,
	"/mash.intake.v1.IntakeService/GetReferral":    agency | pra | man | aud,
	"/mash.intake.v1.IntakeService/ListReferrals":  agency | pra | man | aud,
	"POST /v1/referrals":                           ref | pra,
	"GET /v1/referrals/{id}":                       agency | pra | man | aud,
	"GET /v1/referrals":                            agency | pra | man | aud,
	"POST /fhir/r4/Bundle":                         ref | pra,
	"POST /fhir/r4/ServiceRequest":                 ref | pra,
	"GET /fhir/r4/ServiceRequest/{id}":             agency | pra | man | aud,
	"GET /fhir/r4/metadata":                        everyone,
	// rules
	"/mash.rules.v1.RulesService/EvaluateReferral": hub,
	"/mash.rules.v1.RulesService/ValidatePack":     hub | adm,
	"/mash.rules.v1.RulesService/UploadPack":       man,
	"/mash.rules.v1.RulesService/ActivatePack":     man,
	"/mash.rules.v1.RulesService/ListPacks":        staff,
	"/mash.rules.v1.RulesService/ReplayPack":       man,
	"/mash.rules.v1.RulesService/GetDecision":      hub | aud,
	"/mash.rules.v1.RulesService/ConfirmDecision":  hub,
	"/mash.rules.v1.RulesService/OverrideDecision": hub,
	// triage
	"/mash.triage.v1.TriageService/ListQueue":                hub,
	"/mash.triage.v1.TriageService/GetCase":                  hub,
	"/mash.triage.v1.TriageService/ClaimCase":                hub,
	"/mash.triage.v1.TriageService/ReleaseCase":              hub,
	"/mash.triage.v1.TriageService/AssignCase":               man,
	"/mash.triage.v1.TriageService/ReassignCases":            man,
	"/mash.triage.v1.TriageService/NameLeadProfessional":     hub,
	"/mash.triage.v1.TriageService/PlaceLegalHold":           man,
	"/mash.triage.v1.TriageService/LiftLegalHold":            man,
	"/mash.triage.v1.TriageService/ExportCase":               man,
	"/mash.triage.v1.TriageService/EraseCase":                man,
	"/mash.triage.v1.TriageService/DecideCase":               hub,
	"/mash.triage.v1.TriageService/AuthoriseSharing":         man,
	"/mash.triage.v1.TriageService/RevokeSharing":            man,
	"/mash.triage.v1.TriageService/RecordConsent":            hub,
	"/mash.triage.v1.TriageService/RecordStrategyDiscussion": hub,
	"/mash.triage.v1.TriageService/CloseCase":                hub,
	"/mash.triage.v1.TriageService/RequestInformation":       hub,
	"/mash.triage.v1.TriageService/ListInformationRequests":  agency | hub | aud,
	"/mash.triage.v1.TriageService/AnswerInformationRequest": agency | hub,
	"/mash.triage.v1.TriageService/RaiseDisagreement":        agency | hub,
	"/mash.triage.v1.TriageService/ListDisagreements":        agency | hub | aud,
	"/mash.triage.v1.TriageService/EscalateDisagreement":     agency | hub,
	"/mash.triage.v1.TriageService/ResolveDisagreement":      hub,
	"/mash.triage.v1.TriageService/GetDashboard":             man | aud,
	"/mash.triage.v1.RecordsService/Search":                  hub,
	"/mash.triage.v1.RecordsService/GetChild":                hub,
	"/mash.triage.v1.RecordsService/MergeChildren":           hub,
	"/mash.triage.v1.RecordsService/UnmergeChildren":         hub,
	"/mash.triage.v1.RecordsService/LinkReferral":            hub,
	"/mash.triage.v1.RecordsService/UnlinkReferral":          hub,
	// quality assurance: managers review; the agreement rate is management information
	"/mash.triage.v1.QualityService/ListQualitySample":   man,
	"/mash.triage.v1.QualityService/RecordQualityReview": man,
	"/mash.triage.v1.QualityService/ListQualityReviews":  man | aud,
	"/mash.triage.v1.QualityService/GetQualityAgreement": man | aud,
	// notify: an agency reads and acknowledges its own notifications
	"/mash.notify.v1.NotifyService/ListAgencies":            staff,
	"/mash.notify.v1.NotifyService/PutAgency":               man | adm,
	"/mash.notify.v1.NotifyService/RemoveAgency":            man | adm,
	"/mash.notify.v1.NotifyService/ListDirectoryChanges":    staff,
	"/mash.notify.v1.NotifyService/ApproveDirectoryChange":  man,
	"/mash.notify.v1.NotifyService/RejectDirectoryChange":   man | adm,
	"/mash.notify.v1.NotifyService/ListNotifications":       everyone,
	"/mash.notify.v1.NotifyService/GetNotification":         everyone,
	"/mash.notify.v1.NotifyService/AcknowledgeNotification": everyone,
	"/mash.notify.v1.NotifyService/RetryNotification":       man | adm,
	"/mash.notify.v1.NotifyService/GetAckDeadlines":         staff,
	"/mash.notify.v1.NotifyService/SetAckDeadlines":         man | adm,
	// the message itself: every reader of notifications may ask, only the receiving agency
	// finds it (to anyone else it is not found)
	"/mash.notify.v1.AgencyInboxService/GetNotificationMessage": everyone,
	"GET /v1/notifications/{notificationId}/message":            everyone,
	// audit
	"/mash.audit.v1.AuditService/GetTrail":         aud,
	"/mash.audit.v1.AuditService/SearchEntries":    aud,
	"/mash.audit.v1.AuditService/GetCheckpoint":    aud | adm,
	"/mash.audit.v1.AuditService/ProveInclusion":   aud,
	"/mash.audit.v1.AuditService/ProveConsistency": aud | adm,
	"/mash.audit.v1.AuditService/ExportTrail":      aud,
	"/mash.audit.v1.AuditService/WhoAccessed":      aud | hub,
	"/mash.audit.v1.AuditService/UserActivity":     aud,
	"/mash.audit.v1.AuditService/UnusualAccess":    aud,
	// a subject access export reads the trail as the manager who makes it
	"/mash.audit.v1.AuditService/GetSubjectTrail":    man,
	"/mash.audit.v1.AuditService/GetSubjectAccesses": man,
	// HTTP faces of the same methods
	"GET /v1/audit/trail":                                      aud,
	"GET /v1/audit/entries":                                    aud,
	"GET /v1/audit/checkpoint":                                 aud | adm,
	"GET /v1/audit/proofs/inclusion":                           aud,
	"GET /v1/audit/proofs/consistency":                         aud | adm,
	"GET /v1/audit/access":                                     aud | hub,
	"GET /v1/audit/activity":                                   aud,
	"GET /v1/audit/unusual-access":                             aud,
	"GET /v1/audit/export":                                     aud,
	"GET /v1/agencies":                                         staff,
	"PUT /v1/agencies/{agencyId}":                              man | adm,
	"DELETE /v1/agencies/{agencyId}":                           man | adm,
	"GET /v1/agencies/{agencyId}/changes":                      staff,
	"POST /v1/agencies/{agencyId}/changes/{changeId}/approve":  man,
	"POST /v1/agencies/{agencyId}/changes/{changeId}/reject":   man | adm,
	"GET /v1/notifications":                                    everyone,
	"GET /v1/notifications/{notificationId}":                   everyone,
	"POST /v1/notifications/{notificationId}/acknowledge":      everyone,
	"POST /v1/notifications/{notificationId}/retry":            man | adm,
	"GET /v1/partnerships/{partnership}/ack-deadlines":         staff,
	"PUT /v1/partnerships/{partnership}/ack-deadlines":         man | adm,
	"POST /v1/rules:evaluate":                                  hub,
	"POST /v1/packs:validate":                                  hub | adm,
	"POST /v1/packs":                                           man,
	"POST /v1/packs/{packId}/activate":                         man,
	"GET /v1/packs":                                            staff,
	"POST /v1/packs:replay":                                    man,
	"GET /v1/decisions/{referralId}":                           hub | aud,
	"POST /v1/decisions/{referralId}/confirm":                  hub,
	"POST /v1/decisions/{referralId}/override":                 hub,
	"GET /v1/queue":                                            hub,
	"GET /v1/cases/{referralId}":                               hub,
	"POST /v1/cases/{referralId}/claim":                        hub,
	"POST /v1/cases/{referralId}/release":                      hub,
	"POST /v1/cases/{referralId}/assign":                       man,
	"POST /v1/queue/reassign":                                  man,
	"POST /v1/cases/{referralId}/lead-professional":            hub,
	"POST /v1/cases/{referralId}/legal-hold":                   man,
	"POST /v1/cases/{referralId}/legal-hold/lift":              man,
	"POST /v1/cases/{referralId}/export":                       man,
	"POST /v1/cases/{referralId}/erase":                        man,
	"POST /v1/cases/{referralId}/decide":                       hub,
	"POST /v1/cases/{referralId}/sharing-authorisation":        man,
	"POST /v1/cases/{referralId}/sharing-authorisation:revoke": man,
	"POST /v1/cases/{referralId}/consent":                      hub,
	"POST /v1/cases/{referralId}/strategy":                     hub,
	"POST /v1/cases/{referralId}/close":                        hub,
	"POST /v1/cases/{referralId}/information-requests":         hub,
	"GET /v1/information-requests":                             agency | hub | aud,
	"POST /v1/information-requests/{requestId}/answer":         agency | hub,
	"POST /v1/cases/{referralId}/disagreements":                agency | hub,
	"GET /v1/disagreements":                                    agency | hub | aud,
	"POST /v1/disagreements/{disagreementId}/escalate":         agency | hub,
	"POST /v1/disagreements/{disagreementId}/resolve":          hub,
	"GET /v1/dashboard":                                        man | aud,
	"GET /v1/dashboard.csv":                                    man | aud,
	"GET /v1/search":                                           hub,
	"GET /v1/children/{childId}":                               hub,
	"POST /v1/children/{childId}/merge":                        hub,
	"POST /v1/child-merges/{mergeId}/unmerge":                  hub,
	"POST /v1/cases/{referralId}/child:link":                   hub,
	"POST /v1/cases/{referralId}/child:unlink":                 hub,
	"GET /v1/quality/sample":                                   man,
	"POST /v1/cases/{referralId}/quality-reviews":              man,
	"GET /v1/quality/reviews":                                  man | aud,
	"GET /v1/quality/agreement":                                man | aud,
	// console: its menus and buttons come from the same permission table
	"console GET /console/static/":       public,
	"console GET /console/{$}":           public,
	"console GET /console/sign-in":       public,
	"console POST /console/sign-in":      public,
	"console GET /console/oidc/start":    public,
	"console GET /console/oidc/callback": public,
	"console GET /console/lang":          public,
	"console /console/":                  public,
	"console POST /console/sign-out":     staff | par,
	// the email link, then the referral for whoever opens it; the partner view is partners' alone
	"console GET /referrals/{id}":                                                    public,
	"console GET /console/referrals/{id}":                                            hub | par,
	"console GET /console/partner":                                                   par,
	"console GET /console/partner/referrals/{id}":                                    par,
	"console POST /console/partner/referrals/{id}/notifications/{nid}/acknowledge":   par,
	"console POST /console/partner/referrals/{id}/information-requests/{rid}/answer": par,
	"console POST /console/partner/referrals/{id}/disagreements":                     par,
	"console POST /console/partner/referrals/{id}/disagreements/{did}/escalate":      par,
	"console POST /console/cases/{id}/disagreements":                                 hub,
	"console GET /console/queue":                                                     hub,
	"console GET /console/contacts/new":                                              pra,
	"console POST /console/contacts":                                                 pra,
	"console GET /console/queue/counts.json":                                         hub,
	"console GET /console/cases/{id}":                                                hub,
	"console POST /console/cases/{id}/claim":                                         hub,
	"console POST /console/cases/{id}/release":                                       hub,
	"console POST /console/cases/{id}/assign":                                        man,
	"console POST /console/queue/reassign":                                           man,
	"console POST /console/cases/{id}/lead-professional":                             hub,
	"console POST /console/cases/{id}/decide":                                        hub,
	"console POST /console/cases/{id}/sharing-authorisation":                         man,
	"console POST /console/cases/{id}/sharing-authorisation/revoke":                  man,
	"console POST /console/cases/{id}/strategy":                                      hub,
	"console POST /console/cases/{id}/close":                                         hub,
	"console POST /console/cases/{id}/information-requests":                          hub,
	"console POST /console/cases/{id}/information-requests/{rid}/answer":             hub,
	"console POST /console/cases/{id}/disagreements/{did}/escalate":                  hub,
	"console POST /console/cases/{id}/disagreements/{did}/resolve":                   hub,
	"console GET /console/disagreements":                                             hub | aud,
	"console GET /console/notifications":                                             staff,
	"console POST /console/notifications/{id}/retry":                                 man | adm,
	"console GET /console/directory":                                                 staff,
	"console POST /console/directory/changes/{id}/approve":                           man,
	"console POST /console/directory/changes/{id}/reject":                            man,
	"console GET /console/packs":                                                     staff,
	"console GET /console/packs/diff":                                                staff,
	"console GET /console/packs/{id}":                                                staff,
	"console POST /console/packs/replay":                                             man,
	"console POST /console/packs/{id}/activate":                                      man,
	"console GET /console/dashboard":                                                 man | aud,
	"console GET /console/dashboard.csv":                                             man | aud,
	"console GET /console/audit":                                                     aud,
	"console GET /console/search":                                                    hub,
	"console GET /console/children/{id}":                                             hub,
	"console POST /console/children/{id}/merge":                                      hub,
	"console POST /console/children/{id}/link":                                       hub,
	"console POST /console/child-merges/{id}/unmerge":                                hub,
	"console POST /console/cases/{id}/child/unlink":                                  hub,
	"console GET /console/quality":                                                   man,
	"console POST /console/quality/reviews":                                          man,
}

var matrixRoles = []struct {
	bit  int
	role auth.Role
}{{ref, auth.RoleReferrer}, {pra, auth.RolePractitioner}, {man, auth.RoleManager}, {aud, auth.RoleAuditor}, {adm, auth.RoleAdmin},
	{par, auth.RolePartner}}

// migrationKey names the template database by every migration this binary applies.
func migrationKey(t *testing.T) string {
	t.Helper()
	var all []db.Migration
	for _, load := range []func() ([]db.Migration, error){auth.Migrations, intakestore.Migrations, rulesstore.Migrations,
		auditstore.Migrations, notifystore.Migrations, triagestore.Migrations, consolestore.Migrations} {
		ms, err := load()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ms...)
	}
	all = append(all, db.Migration{Name: "default-pack", SQL: string(packs.Default())})
	return "mash_authz_" + db.Checksum(all)
}

// inProcess is every service of the binary serving in this process.
type inProcess struct {
	sys                *system
	grpcAddr, httpAddr string
}

// startInProcess runs every service as mash serve does, on a cloned template database and
// an embedded JetStream server, until the test ends. Tests using it may not run in
// parallel: the audit keys come from the environment.
func startInProcess(t *testing.T) *inProcess {
	t.Helper()
	return startInProcessWith(t, newMigratedURL(t), nil)
}

// newMigratedURL is a fresh database cloned from the migrated template.
func newMigratedURL(t *testing.T) string {
	t.Helper()
	return dbtest.NewURL(t, migrationKey(t), func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return migrateAll(ctx, pool, serviceNames())
	})
}

// startInProcessWith is startInProcess on the database at dbURL, with configure (when not
// nil) changing the parsed settings before the system starts.
func startInProcessWith(t *testing.T, dbURL string, configure func(*serveConfig)) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	skey, _, err := auditlog.GenerateKey("mash-audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(audit.EnvMasterKey, base64.StdEncoding.EncodeToString(master))
	t.Setenv(audit.EnvSigningKey, skey)
	t.Setenv(console.EnvInsecureCookies, "true")
	grpcAddr, httpAddr := testport.Addr(t), testport.Addr(t)
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	// Each role's credential calls every endpoint in quick succession: the per-credential
	// rate limit is off so the table sees authorisation answers, never a 429.
	cfg, err := parseServeConfig([]string{"--database-url", dbURL + sep + "pool_max_conns=6", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--nats-url", "", "--nats-listen", testport.Addr(t), "--data-dir", t.TempDir(), "--rate-credential", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(&cfg)
	}
	sys, err := startSystem(ctx, cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- sys.serve(ctx, ready) }()
	select {
	case <-ready:
	case err := <-served:
		sys.close()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-served
		sys.close()
	})
	return &inProcess{sys: sys, grpcAddr: grpcAddr, httpAddr: httpAddr}
}

// TestAuthorisationMatrix runs every service of the binary in one process on real Postgres
// and JetStream, and calls every gRPC method (from the registered services' descriptors),
// every HTTP route and every console page (from the route lists) in every role, checking
// each answer against authzMatrix.
func TestAuthorisationMatrix(t *testing.T) {
	ctx := context.Background()
	ip := startInProcess(t)
	sys, grpcAddr, httpAddr := ip.sys, ip.grpcAddr, ip.httpAddr

	// A credential and, for staff, a console session per role.
	tokens, sessions := map[auth.Role]string{}, map[auth.Role]string{}
	for _, r := range matrixRoles {
		if r.role == auth.RolePartner {
			// A partner agency's person has a console session only, which is also the
			// bearer credential the console calls the services with.
			_, sess, err := sys.p.auth.CreateSessionOfKind(ctx, "matrix-partner", "Matrix", auth.RolePartner, "south-wales-police", "police", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tokens[r.role], sessions[r.role] = sess, sess
			continue
		}
		kind, agency, ps := "hub", "rct-mash", []string{"rhondda-cynon-taf"}
		if r.role == auth.RoleReferrer {
			kind, agency, ps = "police", "south-wales-police", nil
		}
		_, tok, err := sys.p.auth.Create(ctx, agency, kind, r.role, "test", ps...)
		if err != nil {
			t.Fatal(err)
		}
		tokens[r.role] = tok
		if r.role != auth.RoleReferrer {
			_, sess, err := sys.p.auth.CreateSession(ctx, "matrix-"+string(r.role), "Matrix", r.role, "rct-mash", time.Hour, ps...)
			if err != nil {
				t.Fatal(err)
			}
			sessions[r.role] = sess
		}
	}
	seen := map[string]bool{}
	check := func(endpoint string, bit int, denied, unauthenticated bool, what string) {
		t.Helper()
		allowed, listed := authzMatrix[endpoint]
		if !listed {
			return
		}
		want := allowed&bit != 0 || allowed&public != 0
		switch {
		case unauthenticated && want:
			t.Errorf("%s as %s: unauthenticated, want allowed", endpoint, what)
		case denied && want:
			t.Errorf("%s as %s: refused, the table allows it", endpoint, what)
		case !denied && !unauthenticated && !want:
			t.Errorf("%s as %s: allowed, the table does not list it", endpoint, what)
		}
	}

	// gRPC: every method of every service registered on the server.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for svc, info := range sys.srv.GRPC().GetServiceInfo() {
		if strings.HasPrefix(svc, "grpc.") {
			continue // health and reflection are public by design
		}
		for _, m := range info.Methods {
			method := "/" + svc + "/" + m.Name
			seen[method] = true
			if _, ok := authzMatrix[method]; !ok {
				t.Errorf("gRPC method %s is not in the authorisation matrix", method)
				continue
			}
			err := conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s without a credential: %v, want UNAUTHENTICATED", method, err)
			}
			for _, r := range matrixRoles {
				cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokens[r.role])
				err := conn.Invoke(cctx, method, &emptypb.Empty{}, &emptypb.Empty{})
				code := status.Code(err)
				check(method, r.bit, code == codes.PermissionDenied, code == codes.Unauthenticated, string(r.role))
			}
		}
	}

	// HTTP: every authenticated API route.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, header http.Header, body url.Values) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+httpAddr+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		switch {
		case body != nil:
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case rd == nil && method != http.MethodGet:
			// An API write with an empty JSON object: authorisation comes before the
			// request's own checks, so a role the table refuses is refused, not told
			// what its request lacks.
			req.Body = io.NopCloser(strings.NewReader("{}"))
			req.ContentLength = 2
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location") + "\n" + string(b)
	}
	for _, rt := range sys.srv.Routes() {
		if rt.Public {
			continue // health, metrics and the console's mount, which is checked page by page below
		}
		seen[rt.Pattern] = true
		if _, ok := authzMatrix[rt.Pattern]; !ok {
			t.Errorf("HTTP route %s is not in the authorisation matrix", rt.Pattern)
			continue
		}
		method, path := routePath(rt.Pattern)
		if code, _ := do(method, path, http.Header{}, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without a credential: %d, want 401", rt.Pattern, code)
		}
		for _, r := range matrixRoles {
			code, _ := do(method, path, http.Header{"Authorization": {"Bearer " + tokens[r.role]}}, nil)
			check(rt.Pattern, r.bit, code == http.StatusForbidden, code == http.StatusUnauthorized, string(r.role))
		}
	}

	// Console: every page and form, as each staff role's session.
	var pages []string
	for _, svc := range sys.running {
		if c, ok := svc.(*console.Service); ok {
			pages = c.Routes()
		}
	}
	if len(pages) == 0 {
		t.Fatal("the console registered no routes")
	}
	// Signing out ends the session the other pages use: last.
	slices.SortStableFunc(pages, func(a, b string) int {
		return cmpBool(strings.HasSuffix(a, "/sign-out"), strings.HasSuffix(b, "/sign-out"))
	})
	csrfPattern := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	for _, pattern := range pages {
		key := "console " + pattern
		seen[key] = true
		if _, ok := authzMatrix[key]; !ok {
			t.Errorf("console route %s is not in the authorisation matrix", pattern)
			continue
		}
		if authzMatrix[key]&public != 0 {
			continue // sign-in, language, static files: open to anyone by design
		}
		method, path := routePath(pattern)
		for _, r := range matrixRoles {
			if r.role == auth.RoleReferrer {
				continue // referrers are machine clients: they have no console session
			}
			cookie := http.Header{"Cookie": {console.SessionCookie + "=" + sessions[r.role]}}
			var form url.Values
			if method == http.MethodPost {
				_, page := do(http.MethodGet, "/console/notifications", cookie, nil)
				m := csrfPattern.FindStringSubmatch(page)
				if m == nil {
					t.Fatalf("no form token on the notifications page as %s", r.role)
				}
				form = url.Values{"csrf": {m[1]}}
			}
			code, out := do(method, path, cookie, form)
			signedOut := code == http.StatusSeeOther && strings.HasPrefix(out, "/console/sign-in?next=")
			check(key, r.bit, code == http.StatusForbidden, code == http.StatusUnauthorized || signedOut, string(r.role))
		}
	}
	for endpoint := range authzMatrix {
		if !seen[endpoint] {
			t.Errorf("the authorisation matrix lists %s, which the binary does not serve", endpoint)
		}
	}
}

// routePath turns a mux pattern into a request: its method (GET when it names none) and a
// path with each wildcard filled by a well-formed id that names nothing.
func routePath(pattern string) (string, string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	for {
		i := strings.Index(path, "{")
		if i < 0 {
			break
		}
		j := strings.Index(path[i:], "}")
		path = path[:i] + "0192a3b4-0000-7000-8000-00000000ffff" + path[i+j+1:]
	}
	if strings.HasSuffix(path, "/static/") {
		path += "app.css"
	}
	return method, path
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
