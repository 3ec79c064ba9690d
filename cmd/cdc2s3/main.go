// Command cdc2s3 streams a PostgreSQL database into Parquet files on S3 (or
// a local directory): a consistent full load, then every change from
// logical replication, acknowledged only once uploaded.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/source"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	// The first SIGTERM or SIGINT asks for a graceful stop (flush, upload,
	// acknowledge, exit 0); a second one aborts at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, stopNow := context.WithCancel(context.Background())
	defer stopNow()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		stopNow()
		<-sigs
		cancel()
	}()

	app := newApp(stop)
	if err := app.RunContext(ctx, args); err != nil {
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			fmt.Fprintln(os.Stderr, "cdc2s3:", source.Redact(err.Error()))
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "cdc2s3:", source.Redact(err.Error()))
		return 1
	}
	return 0
}

func newApp(stop context.Context) *cli.App {
	app := &cli.App{
		Name:    "cdc2s3",
		Usage:   "stream PostgreSQL into Parquet files on S3: full load plus change data capture",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"CDC2S3_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"CDC2S3_LOG_FORMAT"}},
			&cli.BoolFlag{Name: "source-iam-auth", Usage: "authenticate to RDS or Aurora with IAM database authentication tokens, made for every connection from the AWS credentials (no password in --source; needs sslmode=verify-full)", EnvVars: []string{"CDC2S3_SOURCE_IAM_AUTH"}},
		},
		Before: func(c *cli.Context) error {
			if !c.Bool("source-iam-auth") {
				return nil
			}
			cfg, err := config.LoadDefaultConfig(c.Context)
			if err != nil {
				return fmt.Errorf("AWS configuration for --source-iam-auth: %w", err)
			}
			if cfg.Region == "" {
				return cli.Exit("--source-iam-auth needs the database's AWS region: set AWS_REGION", 2)
			}
			source.UseIAMAuth(&source.IAMAuth{Region: cfg.Region, Credentials: cfg.Credentials})
			return nil
		},
		Commands: []*cli.Command{
			runCommand(stop),
			snapshotCommand(stop),
			reloadCommand(),
			catalogCommand(),
			generateCommand(stop),
			inspectCommand(),
			checkCommand(),
			statusCommand(),
			dropCommand(),
			validateCommand(stop),
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // errors are printed once, in run
	}
	// Every command that takes settings also takes them from --config.
	for _, cmd := range app.Commands {
		if len(cmd.Flags) > 0 {
			cmd.Flags = append(cmd.Flags, configFlag())
			cmd.Before = applyConfig
		}
	}
	app.Commands = append(app.Commands, configCommand(app.Commands))
	return app
}

// newLogger builds the process logger from the global flags.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	return newLoggerTo(c, os.Stderr)
}

// newLoggerTo is newLogger writing to w instead of standard error.
func newLoggerTo(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use text or json", c.String("log-format"))
}
