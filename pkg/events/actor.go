package events

import eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"

// Roles an envelope's actor holds when no credential acted (the same words as
// auth.ActorRoleSystem and auth.ActorRoleAgency, which the audit trail records).
const (
	RoleSystem = "system"
	RoleAgency = "agency"
)

// Actor is who acted, for an envelope: a credential's client id ("user:<id>" for a person),
// the role it acted in, and its agency.
func Actor(id, role, agency string) *eventsv1.Actor {
	return &eventsv1.Actor{Id: id, Role: role, Agency: agency}
}

// System is a service acting on its own (a deadline, a sweep, a delivery, a decision of the
// rule pack), named by its bus role.
func System(service string) *eventsv1.Actor {
	return &eventsv1.Actor{Id: service, Role: RoleSystem}
}

// AgencyActor is an agency acting on its own channel (an acknowledgement or an answer on the
// bus), where no credential of a person is known.
func AgencyActor(agency string) *eventsv1.Actor {
	return &eventsv1.Actor{Id: agency, Role: RoleAgency, Agency: agency}
}
