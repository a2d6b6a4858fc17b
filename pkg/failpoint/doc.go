// Package failpoint lets crash tests make a process exit at a named point, such as after
// intake commits a referral but before it replies. It is compiled in only with the build tag
// "failpoint"; in every other build Inject is an empty function the compiler removes.
//
// A binary built with -tags failpoint reads MASH_FAILPOINTS, a comma-separated list of point
// names; reaching a listed point exits the process at once with status 137 (as kill -9 would
// be seen by a parent), without running deferred functions or flushing anything.
package failpoint

// EnvVar names the environment variable listing the armed failpoints.
const EnvVar = "MASH_FAILPOINTS"

// ExitCode is the status a failpoint exits with.
const ExitCode = 137
