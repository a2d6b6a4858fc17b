package console

import (
	"github.com/mash-hub/mash/pkg/busauth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Bus is all the console's processes may do on NATS: publish the administrative acts that
// wait in the auth schema's outbox (sign-ins, and the mash command's API client and console
// user changes), which they relay. The console consumes no events.
var Bus = busauth.Role{
	Service:   "console",
	Publishes: []string{eventsv1.SubjectAdminSignin, eventsv1.SubjectAdminClient, eventsv1.SubjectAdminUser},
}
