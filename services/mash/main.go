// Command mash runs the Multi-Agency Safeguarding Hub services: all of them in one process
// (the default, with an embedded NATS server), or any subset for a scaled deployment.
//
//	mash serve [--services intake,...]   run services
//	mash migrate                         apply database migrations
//	mash clients create|list|revoke      manage API credentials
//	mash bus users|config                manage NATS users; render an external server's users
//	mash deadletters list|replay         inspect and replay dead-lettered events
//	mash audit keygen|verify             make audit keys; verify the audit log
//	mash demo [--referrals N --days D]   load synthetic demo data through the APIs
//	mash version                         print the release version
//	mash retention run --dry-run         list the cases due for erasure
//	mash cases hold|unhold ID --reason R place or lift a legal hold (MASH_TOKEN: a manager's)
//	mash cases export ID --reason R --out FILE  everything held about the child, to a new file (subject access)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is the release, set at build time (the Dockerfile passes its VERSION build arg:
// go build -ldflags "-X main.version=..."). A plain go build reports the module version Go
// recorded, or "devel".
var version = ""

// releaseVersion is what `mash version` prints.
func releaseVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// defaultMemoryLimit is mash's soft memory limit when GOMEMLIMIT is not set.
const defaultMemoryLimit = 400 << 20

func main() {
	// The heap is small (tens of MB) and requests allocate briefly, so the default GOGC=100
	// collects very often; 400 cut the median acknowledgement time by about a fifth in
	// scripts/bench runs. An explicit GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// GOGC=400 alone lets the heap grow to five times what is live: about 550 MiB for the
	// 110 MiB live under a burst of referrals. A soft limit keeps the rare collections while
	// the heap is small and collects more often as it nears the limit, so mash's memory
	// stays bounded (the runtime lets it pass the limit rather than spend more than half the
	// CPU collecting). Deployments set GOMEMLIMIT from their container's limit; it wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mash:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: mash <command> [flags]

commands:
  serve        run the services (all by default; --services intake,... for a subset)
  migrate      apply database migrations for every service
  clients      create, list or revoke API credentials
  users        create or disable the console's local staff accounts
  bus          create, list or revoke NATS users (agencies, operators, services); print a NATS server's users
  deadletters  list or replay events that consumers gave up on
  audit        keygen (new audit keys) or verify (the live log against its signed checkpoint)
  demo         load synthetic demo referrals over the last months, through every service's API
  version      print the release version
  retention    run --dry-run: list the closed cases due for erasure and the rule that makes each due
  cases        hold or unhold a case (a legal hold, with a reason), through the API as a manager
               export ID --reason R --out FILE: everything held about the case's child, to a new owner-only file

Run "mash <command> -h" for a command's flags. Every flag has an environment variable.`

func realMain(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:])
	case "migrate":
		return migrate(ctx, args[1:])
	case "clients":
		return clients(ctx, args[1:])
	case "users":
		return users(ctx, args[1:])
	case "bus":
		return busCommand(ctx, args[1:])
	case "deadletters":
		return deadLetters(ctx, args[1:])
	case "audit":
		return auditCommand(ctx, args[1:])
	case "demo":
		return demoCommand(ctx, args[1:])
	case "version", "-version", "--version":
		fmt.Fprintln(os.Stdout, "mash", releaseVersion())
		return nil
	case "retention":
		return retentionCommand(ctx, args[1:])
	case "cases":
		return casesCommand(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(os.Stdout, usage)
		return nil
	default:
		fmt.Fprintln(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
