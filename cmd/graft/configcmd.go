package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/graftdb/graft/app"
)

const configAbout = `
graft reads its settings from graft.yaml in the current directory, or the
file --config names; ${NAME} in it is replaced by the environment variable
NAME (for secrets: auth.token: ${GRAFT_TOKEN}). Every setting has a default,
and command-line flags override the file. docs/configuration.md lists them.

Subcommands:
  validate  report every error in the file, each with its field path
  print     show the effective configuration: defaults, file, then flags`

func runConfig(ctx context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintf(stdout, "Usage: graft config validate|print [flags]\n%s\n", configAbout)
		if len(args) == 0 {
			return usagef("missing subcommand: validate or print")
		}
		return errHelp
	}
	sub, args := args[0], args[1:]
	if sub != "validate" && sub != "print" {
		return usagef("unknown subcommand %q: validate or print", sub)
	}
	var f runFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("config "+sub, "graft config "+sub+" [--config FILE] [flags]", configAbout)
	f.register(fs)
	if _, err := fs.parse(args, stdout); err != nil {
		return err
	}
	name := f.configPath
	if name == "" {
		name = "(no config file: defaults)"
	}
	if err := app.Check(f.c); err != nil {
		return fmt.Errorf("%s is invalid:\n  %s", name, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if sub == "print" {
		fmt.Fprintf(stdout, "# effective configuration: defaults < %s < flags\n%s", name, f.c.YAML())
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok\n", name)
	return nil
}
