// Command graft writes event streams into graph databases.
//
// Run "graft help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/engine"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags or arguments
	exitFatal = 3 // the sink reported a fatal error (credentials, schema)
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists every command. Each turns its flags into a configuration
// and hands it to package app, which assembles the pipeline.
var commands []command

func init() {
	commands = []command{
		{"run", "run the service: stream, engine and HTTP API (embedded by default)", runRun},
		{"demo", "run the service and post the fleet workload to it, with live progress", runDemo},
		{"ingest", "apply NDJSON writes from a file or stdin, through the full engine", runIngest},
		{"map", "print the writes mapping rules make of domain events (a dry run)", runMap},
		{"route", "map domain events from Kafka and produce the writes to graph.write.<Rule> topics", runRoute},
		{"produce", "produce NDJSON writes from a file or stdin to a Kafka topic, checked and keyed", runProduce},
		{"export", "print the graph as NDJSON, one vertex or edge a line", runExport},
		{"dlq", "list or redrive dead letters", runDLQ},
		{"bench", "measure graft against hand-rolled consumers' strategies on the fleet workload", runBench},
		{"config", "validate or print the configuration (graft.yaml, flags)", runConfig},
		{"version", "print the version", runVersion},
		{"help", "show help for a command", runHelp},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Main runs graft with args and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr) // a mistake: the usage goes with the errors
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" {
		usage(stdout) // asked for: graft --help | less
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, errHelp):
			return exitOK
		case errors.As(err, new(*usageError)), errors.As(err, new(*app.ConfigError)):
			fmt.Fprintf(stderr, "graft %s: %v\nRun 'graft %s --help' for usage.\n", c.name, err, c.name)
			return exitUsage
		case errors.As(err, new(*engine.FatalError)):
			fmt.Fprintf(stderr, "graft %s: %v\n", c.name, err)
			return exitFatal
		default:
			fmt.Fprintf(stderr, "graft %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "graft: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Graft writes event streams into graph databases: per-key order, batched
transactions, conflicts prevented by scheduling, nothing lost.

Usage:
  graft <command> [flags] [args]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command takes --help. Sink-using commands take --data-dir DIR (default
./graft-data) and --sink URL (default sqlite:<data-dir>/graph.db).
`)
}

func runHelp(ctx context.Context, args []string, stdin io.Reader, stdout, _ io.Writer) error {
	if len(args) == 0 {
		usage(stdout)
		return nil
	}
	if code := Main(ctx, []string{args[0], "--help"}, stdin, stdout, stdout); code != exitOK {
		return usagef("no command %q", args[0])
	}
	return nil
}
