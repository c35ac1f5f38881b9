package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/acme/postsvc/cmd/server/wiring"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports/accounts"
)

// globalFlags are accepted by every subcommand; each sets the configuration key it names.
func addGlobalFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "optional configuration file (YAML, TOML or JSON)")
	flags := []struct{ name, key, usage string }{
		{"env", "env", "development or production"},
		{"http-addr", "http.addr", "listen address"},
		{"database-driver", "database.driver", "sqlite or mysql"},
		{"database-dsn", "database.dsn", "SQLite file path or MySQL DSN"},
		{"data-dir", "data_dir", "folder for the SQLite file, the development secret and the filesystem object store"},
	}
	for _, f := range flags {
		fs.String(f.name, "", f.usage+" (env "+config.EnvName(f.key)+")")
		config.BindFlag(fs, f.name, f.key)
	}
}

// loadConfig reads configuration with the command's flags. Flags left empty do not override.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	fs := pflag.NewFlagSet("set", pflag.ContinueOnError)
	cmd.Flags().Visit(func(f *pflag.Flag) { fs.AddFlag(f) })
	cfg, err := config.Load(file, fs)
	if err != nil {
		return nil, err
	}
	if len(cfg.Warnings) > 0 {
		logger := newLogger(cfg, cmd.ErrOrStderr())
		for _, w := range cfg.Warnings {
			logger.Warn("configuration: " + w)
		}
	}
	return cfg, nil
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "server",
		Short:         "Accounts, posts, ECG insights and images API",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          runServe,
	}
	addGlobalFlags(root.PersistentFlags())
	root.AddCommand(
		&cobra.Command{Use: "serve", Short: "Serve the HTTP API (the default)", Args: cobra.NoArgs, RunE: runServe},
		newMigrateCommand(),
		newUsersCommand(),
		newECGCommand(),
		newMediaCommand(),
	)
	return root
}

func newECGCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ecg", Short: "Operate the ECG context"}
	cmd.AddCommand(&cobra.Command{
		Use:   "reanalyse",
		Short: "Compute again the insights of stored ECGs whose results are not those of the current analyses",
		Long: "Enqueues a background job that walks every analysed ECG whose stored results come from an\n" +
			"analysis version other than the current one (or from a set of analyses that has changed since),\n" +
			"a batch at a time, on one worker of the running servers' ECG pool: uploads keep being analysed\n" +
			"beside it. The command returns once the job is enqueued; the servers do the work.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			e, cleanup, err := wiring.NewECG(cfg)
			if err != nil {
				return err
			}
			defer cleanup()
			if err := e.MigrateIfEnabled(cmd.Context()); err != nil {
				return err
			}
			id, err := e.ECG.StartReanalysis(cmd.Context())
			if err != nil {
				return failed("enqueue the reanalysis", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enqueued reanalysis job %s; running servers take it from the queue\n", id)
			return nil
		},
	})
	return cmd
}

func newMediaCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "media", Short: "Operate the image repository"}
	cmd.AddCommand(&cobra.Command{
		Use:   "gc",
		Short: "Remove stored objects that no image refers to",
		Long: "Lists the object store and removes every image object or thumbnail whose image does not exist,\n" +
			"once it is older than APP_MEDIA_SWEEP_GRACE (younger ones may belong to an upload in progress).\n" +
			"Running servers do the same at start and every APP_MEDIA_SWEEP_INTERVAL; this is the same sweep, now.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			m, cleanup, err := wiring.NewMedia(cfg, newLogger(cfg, cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer cleanup()
			if err := m.MigrateIfEnabled(cmd.Context()); err != nil {
				return err
			}
			n, err := m.Media.Sweep(cmd.Context())
			if err != nil {
				return failed("remove orphaned objects", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d orphaned objects\n", n)
			return nil
		},
	})
	return cmd
}

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply, roll back or list schema migrations"}
	run := func(action string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			m, cleanup, err := wiring.NewMigration(cfg)
			if err != nil {
				return err
			}
			defer cleanup()
			switch action {
			case "up":
				return m.Migrator.Up(cmd.Context())
			case "down":
				return m.Migrator.Down(cmd.Context())
			default:
				return m.Migrator.Status(cmd.Context(), cmd.OutOrStdout())
			}
		}
	}
	for _, a := range []struct{ name, short string }{
		{"up", "Apply every pending migration"},
		{"down", "Roll back the latest migration"},
		{"status", "List migrations and whether each is applied"},
	} {
		cmd.AddCommand(&cobra.Command{Use: a.name, Short: a.short, Args: cobra.NoArgs, RunE: run(a.name)})
	}
	return cmd
}

func newUsersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage accounts from the command line"}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an account (use --role admin for the first administrator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			email, _ := cmd.Flags().GetString("email")
			password, _ := cmd.Flags().GetString("password")
			role, _ := cmd.Flags().GetString("role")
			name, _ := cmd.Flags().GetString("name")
			if !cmd.Flags().Changed("password") {
				var err error
				if password, err = readPassword(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			a, cleanup, err := wiring.NewAccounts(cfg)
			if err != nil {
				return err
			}
			defer cleanup()
			if err := a.MigrateIfEnabled(cmd.Context()); err != nil {
				return err
			}
			// No network client asked for this hash: it runs as accounts.LocalClient.
			u, err := a.Admin.CreateAccount(cmd.Context(), accounts.LocalClient,
				accounts.NewUserInput{Email: email, Password: password, Name: name, Role: role})
			if err != nil {
				return failed("create the account", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s %s (%s)\n", u.Role(), u.Email(), u.ID())
			return nil
		},
	}
	create.Flags().String("email", "", "email address (required)")
	create.Flags().String("password", "", "password; read from standard input when absent")
	create.Flags().String("role", "user", "user or admin")
	create.Flags().String("name", "", "display name")
	_ = create.MarkFlagRequired("email")
	cmd.AddCommand(create)
	return cmd
}

// readPassword takes the first line of standard input, so a password never has to appear in
// the process list or the shell history.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: pass --password or write it to standard input")
	}
	return line, nil
}

// failed turns the error of a command's work into a message for a person at a terminal that
// says what could not be done ("cannot remove orphaned objects: ...").
func failed(what string, err error) error {
	return fmt.Errorf("cannot %s: %w", what, err)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
