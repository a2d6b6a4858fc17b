package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/config"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// openDB parses the common settings of an admin command and connects.
// check, when given, runs after parsing and before connecting, so bad input fails first.
func openDB(ctx context.Context, name string, args []string, declare func(*config.Set), check func() error) (*pgxpool.Pool, []string, error) {
	var c commonConfig
	fs := flag.NewFlagSet("mash "+name, flag.ContinueOnError)
	s := config.New(fs)
	common := declareCommon(s, &c)
	if declare != nil {
		declare(s)
	}
	if err := s.Parse(args); err != nil {
		return nil, nil, err
	}
	if err := common(); err != nil {
		return nil, nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, nil, err
		}
	}
	pool, err := db.Open(ctx, c.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	return pool, fs.Args(), nil
}

func migrate(ctx context.Context, args []string) error {
	var grant *bool
	declare := func(s *config.Set) {
		grant = s.Bool("grant-roles", "MASH_GRANT_ROLES", false,
			"after migrating, grant each service's own login (mash_intake, mash_triage, ...) its schema and auth, and nothing else; the logins must exist")
	}
	pool, _, err := openDB(ctx, "migrate", args, declare, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrateAll(ctx, pool, serviceNames()); err != nil {
		return err
	}
	fmt.Println("migrations applied:", "auth,", serviceNames())
	if *grant {
		if err := grantRoles(ctx, pool, serviceNames()); err != nil {
			return err
		}
		fmt.Println("roles granted:", serviceNames())
	}
	return nil
}

func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// cliAct is an administrative act done with the mash command on the host: the operator is
// the OS user, acting with the database's own rights, from the machine itself.
func cliAct(subject, verb, target, detail string) adminact.Act {
	return adminact.Act{Subject: subject, Verb: verb, Actor: operator(), ActorRole: "operator", Target: target,
		ClientAddress: "local", Detail: detail}
}

func clients(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mash clients create --agency A --kind K --role R [--partnerships P,Q] | list | revoke ID")
	}
	var agency, kind, role, partnerships *string
	declare := func(s *config.Set) {
		if args[0] == "create" {
			agency = s.String("agency", "MASH_CLIENT_AGENCY", "", "agency slug, e.g. south-wales-police")
			kind = s.String("kind", "MASH_CLIENT_KIND", "", "kind of agency, e.g. police, health")
			role = s.String("role", "MASH_CLIENT_ROLE", "referrer", "role: referrer (any kind); practitioner, manager, auditor, admin (kind hub only)")
			partnerships = s.String("partnerships", "MASH_CLIENT_PARTNERSHIPS", "",
				"partnerships whose referrals the client may see, comma-separated, or * for every one; required for hub roles")
		}
	}
	var served []string
	check := func() error {
		if args[0] == "create" {
			if err := auth.ValidateClient(*agency, *kind, auth.Role(*role)); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			var err error
			if served, err = auth.ValidatePartnerships(auth.Role(*role), strings.Split(*partnerships, ",")); err != nil {
				return fmt.Errorf("create client: --%w", err)
			}
		}
		return nil
	}
	pool, rest, err := openDB(ctx, "clients "+args[0], args[1:], declare, check)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	store := auth.NewStore(pool)
	switch args[0] {
	case "create":
		c, token, err := store.CreateWith(ctx, *agency, *kind, auth.Role(*role), operator(), served, func(tx pgx.Tx, c auth.Client) error {
			return adminact.Insert(ctx, tx, auth.Schema, cliAct(eventsv1.SubjectAdminClient, "create", c.ClientID,
				fmt.Sprintf("agency %s, kind %s, role %s, partnerships %s", c.Agency, c.Kind, c.Role, strings.Join(c.Partnerships, ","))), time.Now())
		})
		if err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		fmt.Fprintf(os.Stderr, "created client %s for %s (%s, %s, partnerships %s); the credential is shown once:\n", c.ClientID, c.Agency, c.Kind, c.Role,
			strings.Join(c.Partnerships, ","))
		fmt.Println(token)
		return nil
	case "list":
		cs, err := store.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tAGENCY\tKIND\tROLE\tPARTNERSHIPS\tCREATED\tREVOKED")
		for _, c := range cs {
			revoked := "-"
			if c.RevokedAt != nil {
				revoked = c.RevokedAt.UTC().Format(time.RFC3339)
			}
			ps := strings.Join(c.Partnerships, ",")
			if ps == "" {
				ps = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ClientID, c.Agency, c.Kind, c.Role, ps, c.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return w.Flush()
	case "revoke":
		if len(rest) != 1 {
			return fmt.Errorf("usage: mash clients revoke ID")
		}
		if err := store.RevokeWith(ctx, rest[0], operator(), func(tx pgx.Tx) error {
			return adminact.Insert(ctx, tx, auth.Schema, cliAct(eventsv1.SubjectAdminClient, "revoke", rest[0], ""), time.Now())
		}); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "revoked client %s; running processes stop accepting it within %s\n", rest[0], auth.CacheTTL)
		return nil
	}
	return fmt.Errorf("unknown clients command %q: use create, list or revoke", args[0])
}

func deadLetters(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return fmt.Errorf("usage: mash deadletters list [--all] | replay --schema S ID")
	}
	var schema, natsURL, natsListen, natsUser, natsPassword *string
	var all *bool
	pool, rest, err := openDB(ctx, "deadletters "+args[0], args[1:], func(s *config.Set) {
		schema = s.String("schema", "MASH_DEADLETTER_SCHEMA", "", "the consuming service's schema (all schemas when listing)")
		all = s.Bool("all", "MASH_DEADLETTER_ALL", false, "also list dead letters already replayed")
		natsURL = s.String("nats-url", "NATS_URL", "", "NATS server to republish to; empty means the embedded server of a running mash serve")
		natsListen = s.String("nats-listen", "MASH_NATS_LISTEN", "127.0.0.1:4223", "loopback address of the embedded NATS server")
		natsUser = s.String("nats-user", "NATS_USER", "", "NATS user to republish as (an operator's: mash bus users create --operator)")
		natsPassword = s.String("nats-password", "NATS_PASSWORD", "", "password of NATS_USER")
	}, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "list" {
		schemas := []string{*schema}
		if *schema == "" {
			if schemas, err = events.DeadLetterSchemas(ctx, pool); err != nil {
				return err
			}
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SCHEMA\tID\tCONSUMER\tEVENT\tSUBJECT\tATTEMPTS\tCREATED\tREPLAYED\tERROR")
		for _, sc := range schemas {
			dls, err := events.ListDeadLetters(ctx, pool, sc, *all)
			if err != nil {
				return err
			}
			for _, d := range dls {
				replayed := "-"
				if d.ReplayedAt != nil {
					replayed = d.ReplayedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", sc, d.ID, d.Consumer, d.EventID, d.Subject, d.Attempts,
					d.CreatedAt.UTC().Format(time.RFC3339), replayed, d.Error)
			}
		}
		return w.Flush()
	}
	if len(rest) != 1 || *schema == "" {
		return fmt.Errorf("usage: mash deadletters replay --schema S ID")
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		return fmt.Errorf("dead letter id %q: must be a number from mash deadletters list", rest[0])
	}
	url := *natsURL
	if url == "" {
		url = "nats://" + *natsListen
	}
	if *natsUser == "" || *natsPassword == "" {
		return errors.New("NATS_USER and NATS_PASSWORD: required to replay (the bus refuses anonymous clients; mash bus users create --operator NAME makes a user)")
	}
	opts := busauth.User{Name: *natsUser, Password: *natsPassword}.Options()
	nc, err := events.Connect(url, "mash-deadletters", append(opts, nats.RetryOnFailedConnect(false))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := events.ReplayDeadLetter(ctx, pool, js, *schema, id); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "replayed dead letter %d of %s\n", id, *schema)
	return nil
}
