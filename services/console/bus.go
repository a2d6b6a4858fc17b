package console

import (
	"mash/pkg/adminact"
	"mash/pkg/busauth"
)

// Bus is all the console's processes may do on NATS: publish the administrative acts that
// wait in the auth schema's outbox (sign-ins, and the mash command's API client and console
// user changes), which they relay. The console consumes no events.
var Bus = busauth.Role{
	Service:   "console",
	Publishes: []string{adminact.SubjectPrefix + "signin", adminact.SubjectPrefix + "client", adminact.SubjectPrefix + "user"},
}
