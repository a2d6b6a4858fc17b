package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/config"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/console"
)

// users manages the console's local accounts (for demos and hubs without an identity
// provider; staff of a council normally sign in through OpenID Connect).
func users(ctx context.Context, args []string) error {
	usage := errors.New("usage: mash users create --username U --name 'Display Name' --role R --partnerships P,Q [--agency A --kind K] [--password-stdin] | password [--password-stdin] U | role U --role R --partnerships P,Q | disable U")
	if len(args) == 0 {
		return usage
	}
	var username, name, role, partnerships, agency, kind *string
	var fromStdin *bool
	declare := func(s *config.Set) {
		if args[0] == "create" {
			username = s.String("username", "MASH_USER_USERNAME", "", "login name: lower-case letters, digits, dots, hyphens")
			name = s.String("name", "MASH_USER_NAME", "", "the person's name as the console shows it")
			role = s.String("role", "MASH_USER_ROLE", "practitioner", "role: practitioner, manager, auditor, admin; partner for staff of a partner agency")
			partnerships = s.String("partnerships", "MASH_USER_PARTNERSHIPS", "", "partnerships whose referrals the person may see, comma-separated, or * for every one (required for hub staff; a partner is limited by its agency)")
			agency = s.String("agency", "MASH_USER_AGENCY", "", "the person's agency (default: MASH_CONSOLE_AGENCY, the hub); a partner's own agency, e.g. south-wales-police")
			kind = s.String("kind", "MASH_USER_KIND", "", "the agency's kind: hub (default), or for a partner police, health, education, local-authority, ...")
		}
		if args[0] == "role" {
			role = s.String("role", "MASH_USER_ROLE", "", "the new role: practitioner, manager, auditor, admin")
			partnerships = s.String("partnerships", "MASH_USER_PARTNERSHIPS", "", "partnerships the person serves in the new role, comma-separated, or * for every one")
		}
		if args[0] == "create" || args[0] == "password" {
			fromStdin = s.Bool("password-stdin", "MASH_USER_PASSWORD_STDIN", false, "read the password from the first line of standard input (else one is generated and printed once)")
		}
	}
	// The subcommand and the console's settings are checked before any connection.
	var cfg console.Config
	check := func() error {
		switch args[0] {
		case "create", "password":
			var err error
			cfg, err = console.ConfigFromEnv(os.LookupEnv)
			return err
		case "disable":
			return nil
		case "role":
			if *role == "" {
				return errors.New("--role: required: practitioner, manager, auditor or admin")
			}
			return nil
		}
		return usage
	}
	rest := args[1:]
	// "role U --role R" reads as people say it; the flag parser stops at the first name, so
	// the name moves behind the flags.
	if args[0] == "role" && len(rest) > 1 && !strings.HasPrefix(rest[0], "-") {
		rest = append(rest[1:], rest[0])
	}
	pool, rest, err := openDB(ctx, "users "+args[0], rest, declare, check)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := console.Migrate(ctx, pool); err != nil {
		return err
	}
	// password reads the new password, or makes one to print once.
	password := func() (string, bool, error) {
		if !*fromStdin {
			return rand.Text(), true, nil
		}
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", false, fmt.Errorf("read password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	shown := func(what, pw string, generated bool) {
		if generated {
			fmt.Fprintln(os.Stderr, what+"; the password is shown once:")
			fmt.Println(pw)
			return
		}
		fmt.Fprintln(os.Stderr, what)
	}
	switch args[0] {
	case "create":
		pw, generated, err := password()
		if err != nil {
			return err
		}
		ag, kd := *agency, *kind
		if kd == "" {
			kd = auth.StaffKind
		}
		if ag == "" {
			if auth.Role(*role) == auth.RolePartner {
				return fmt.Errorf("create user %s: --agency: a partner belongs to a partner agency; name it (e.g. --agency south-wales-police --kind police)", *username)
			}
			ag = cfg.Agency
			if ag == "" {
				ag = console.DefaultAgency
			}
		}
		if err := console.CreateLocalAccountOfKind(ctx, pool, cfg, *username, *name, auth.Role(*role), ag, kd, pw, strings.Split(*partnerships, ","),
			recordAct(ctx, cliAct(eventsv1.SubjectAdminUser, "create", *username, "role "+*role))); err != nil {
			return fmt.Errorf("create user %s: %w", *username, err)
		}
		shown(fmt.Sprintf("created %s user %s of %s", *role, *username, ag), pw, generated)
		return nil
	case "password":
		if len(rest) != 1 {
			return usage
		}
		pw, generated, err := password()
		if err != nil {
			return err
		}
		if err := console.ResetLocalPassword(ctx, pool, cfg, rest[0], pw,
			recordAct(ctx, cliAct(eventsv1.SubjectAdminUser, "password", rest[0], "password reset; sessions ended"))); err != nil {
			return err
		}
		shown("set a new password for "+rest[0]+" and ended its sessions", pw, generated)
		return nil
	case "role":
		if len(rest) != 1 {
			return usage
		}
		was, err := console.ChangeLocalRole(ctx, pool, rest[0], auth.Role(*role), strings.Split(*partnerships, ","), func(tx pgx.Tx, was string) error {
			detail := fmt.Sprintf("role %s to %s, partnerships %s; sessions ended", was, *role, *partnerships)
			return recordAct(ctx, cliAct(eventsv1.SubjectAdminUser, "role", rest[0], detail))(tx)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "changed the role of %s from %s to %s and ended its sessions\n", rest[0], was, *role)
		return nil
	case "disable":
		if len(rest) != 1 {
			return usage
		}
		if err := console.DisableLocalAccount(ctx, pool, rest[0], recordAct(ctx, cliAct(eventsv1.SubjectAdminUser, "disable", rest[0], "sessions ended"))); err != nil {
			return fmt.Errorf("disable user %s: %w", rest[0], err)
		}
		fmt.Fprintf(os.Stderr, "disabled user %s and ended its sessions\n", rest[0])
		return nil
	}
	return usage
}

// recordAct writes a user change's act to the auth outbox, for the trail, in the
// transaction that makes the change: the two commit together, so a command killed half-way
// leaves neither, and an act that cannot be written undoes the change.
func recordAct(ctx context.Context, a adminact.Act) console.Then {
	return func(tx pgx.Tx) error {
		if err := adminact.Insert(ctx, tx, auth.Schema, a, time.Now()); err != nil {
			return fmt.Errorf("%s.%s %s: not made, as it could not be put on the audit trail: %w", a.Area(), a.Verb, a.Target, err)
		}
		return nil
	}
}
