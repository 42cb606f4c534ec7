package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/deadletter"
	"github.com/graftdb/graft/engine"
)

const dlqAbout = `
Dead letters are the records graft gave up on: undecodable input, writes the
sink rejects for good, edges whose endpoint never appeared. Each is kept in
<data-dir>/deadletters.ndjson as one JSON envelope: write_id, key, position,
class, error, attempts, first_failure, last_failure and the raw record (raw,
or raw_base64 when it is not UTF-8).

Subcommands:
  list     print the letters (--format ndjson or table)
  redrive  submit every letter again through the engine; letters that
           commit leave the list, letters that fail again come back with
           their attempts increased`

func runDLQ(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintf(stdout, "Usage: graft dlq list|redrive [flags]\n%s\n", dlqAbout)
		if len(args) == 0 {
			return usagef("missing subcommand: list or redrive")
		}
		return errHelp
	}
	switch args[0] {
	case "list":
		return runDLQList(args[1:], stdout, stderr)
	case "redrive":
		return runDLQRedrive(ctx, args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q: list or redrive", args[0])
}

func runDLQList(args []string, stdout, stderr io.Writer) error {
	var dataDir, format string
	fs := newFlagSet("dlq list", "graft dlq list [flags]", "Prints the dead letters of the data directory, oldest first.")
	fs.StringVar(&dataDir, "data-dir", "./graft-data", "`directory` holding deadletters.ndjson")
	fs.StringVar(&format, "format", "table", "output `format`: table or ndjson (the envelopes as stored)")
	if _, err := fs.parse(args, stdout); err != nil {
		return err
	}
	if format != "table" && format != "ndjson" {
		return usagef("--format: %q is not table or ndjson", format)
	}
	if err := mustBeDataDir(dataDir); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	var tw *tabwriter.Writer
	if format == "table" {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POSITION\tKEY\tWRITE\tCLASS\tATTEMPTS\tLAST FAILURE\tERROR")
	}
	n := 0
	var files []string
	// Letters taken by a redrive that did not finish are still letters.
	for _, name := range []string{deadletter.RedriveName, deadletter.FileName} {
		files = append(files, filepath.Join(dataDir, name))
	}
	for _, path := range files {
		err := deadletter.Read(path, func(_ int, l *graft.Letter) error {
			n++
			if tw == nil {
				b, err := l.MarshalLine()
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			}
			fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%s\t%d\t%s\t%s\n", l.Position.Partition, l.Position.Offset,
				clip(l.Key, 24), clip(l.WriteID, 16), l.Class, l.Attempts, l.LastFailure.Format(time.RFC3339), clip(l.Error, 100))
			return nil
		})
		if errors.As(err, new(*deadletter.CorruptError)) {
			defer fmt.Fprintf(stderr, "graft dlq list: warning: %v\n", err)
		} else if err != nil {
			return err
		}
	}
	if tw != nil {
		tw.Flush()
		fmt.Fprintf(w, "%d dead letters\n", n)
	}
	return nil
}

// clip shortens s for a table cell and keeps it on one line.
func clip(s string, n int) string {
	s = strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

const redriveAbout = `
Takes every dead letter out of <data-dir>/deadletters.ndjson and runs it
through the engine again, in its original order, into the sink. Letters that
commit are gone; letters that fail again are written back with their attempts
increased and their first failure kept. Under --policy quarantine, the keys of
redriven letters are released. If a redrive is interrupted, the next one picks
up the letters it had taken.`

func runDLQRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f engineFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("dlq redrive", "graft dlq redrive [flags]", redriveAbout)
	f.register(fs)
	if _, err := fs.parse(args, stdout); err != nil {
		return err
	}
	if err := mustBeDataDir(f.c.DataDir); err != nil {
		return err
	}
	unlock, err := app.LockDataDir(f.c.DataDir)
	if err != nil {
		return err
	}
	taken, err := deadletter.TakeForRedrive(f.c.DataDir)
	unlock() // OpenPipeline takes it again
	if err != nil {
		return err
	}
	src, err := deadletter.NewSource(taken)
	var corrupt *deadletter.CorruptError
	if errors.As(err, &corrupt) {
		fmt.Fprintf(stderr, "graft dlq redrive: warning: %v\n", err)
	} else if err != nil {
		return err
	}
	toRedrive := src.Len()
	p, err := app.OpenPipeline(ctx, f.c, warnLog(stderr), nil)
	if err != nil {
		return err
	}
	defer p.Close()
	start := time.Now()
	err = p.Engine.Run(ctx, src)
	sum := summarize(p.Engine.Stats().Snapshot(), time.Since(start))
	if err != nil {
		if errors.Is(err, engine.ErrDrainTimeout) || graft.IsStop(err) {
			return fmt.Errorf("redrive interrupted; the next redrive resumes after the letters done (%s): %w", taken, err)
		}
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("redrive interrupted; the next redrive resumes after the letters done (%s)", taken)
	}
	if corrupt != nil {
		// The lines nobody could read are kept, apart, for a human.
		keep := filepath.Join(f.c.DataDir, fmt.Sprintf("deadletters.unreadable.%d.ndjson", time.Now().Unix()))
		if err := os.Rename(taken, keep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "graft dlq redrive: the %d lines that could not be read are kept in %s (with the letters redriven)\n", len(corrupt.Lines), keep)
	}
	if err := deadletter.Finish(taken); err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(stderr, "redrove %d dead letters: %d committed, %d dead-lettered again\n", toRedrive, sum.Committed, sum.DeadLetters)
	}
	if f.json {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

// mustBeDataDir refuses a data directory that does not exist: a typo must
// not read as "no dead letters", nor create an empty store.
func mustBeDataDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--data-dir %s: no such directory (nothing has run with this data directory)", dir)
	case err != nil:
		return fmt.Errorf("--data-dir: %w", err)
	case !st.IsDir():
		return fmt.Errorf("--data-dir %s: not a directory", dir)
	}
	return nil
}
