package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/mapping"
	"github.com/graftdb/graft/source/file"
)

const mapAbout = `
A dry run of mapping rules (docs/mapping.md): reads domain events, one JSON
object per line, from FILE or from stdin, and prints on stdout the write each
one maps to, in the wire format (docs/wire-format.md) — what "graft ingest
--mapping" and "graft run --mapping" would apply. Events that match no rule,
and rules that fail on an event, are reported on stderr as FILE:LINE with the
rule, the field and the reason.

--topic sets the topic events are taken to come from (rules may select on
it). Exit codes: 0 every event mapped (or skipped), 1 some did not, 2 bad
usage or a mapping file that does not compile.`

func runMap(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f sinkFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	var topic string
	var asJSON bool
	fs := newFlagSet("map", "graft map --mapping FILE [flags] [FILE|-]", mapAbout)
	fs.StringVar(&f.c.Mapping, "mapping", f.c.Mapping, "mapping rules `file` (required)")
	fs.StringVar(&topic, "topic", "", "the `topic` events come from (default: the input's name)")
	fs.IntVar(&f.c.Limits.MaxRecordBytes, "max-record-bytes", f.c.Limits.MaxRecordBytes, "largest event accepted, in `bytes`")
	fs.BoolVar(&asJSON, "json", false, "print a summary as one JSON object on stderr's last line")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if f.c.Mapping == "" {
		return usagef("--mapping FILE is required")
	}
	m, err := mapping.Load(f.c.Mapping)
	if err != nil {
		return usagef("--mapping: %v", err)
	}
	input, err := openInput(pos, stdin)
	if err != nil {
		return err
	}
	defer input.Close()
	in, name := input.r, input.name
	if topic == "" {
		topic = name
	}
	lim := f.c.Engine().Limits
	src := file.New(name, in, lim.MaxRecordBytes)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sum := struct {
		Events   int            `json:"events"`
		Mapped   int            `json:"mapped"`
		Skipped  int            `json:"skipped"`
		Unmapped int            `json:"unmapped"`
		Failed   int            `json:"failed"`
		ByRule   map[string]int `json:"by_rule"`
	}{ByRule: map[string]int{}}
	for {
		recs, err := src.Fetch(ctx)
		for _, rec := range recs {
			sum.Events++
			if rec.Truncated > 0 {
				sum.Failed++
				fmt.Fprintf(stderr, "%s:%d: event is %d bytes, over the limit of %d bytes\n", name, rec.Pos.Offset, rec.Truncated, lim.MaxRecordBytes)
				continue
			}
			line := rec.Pos
			rec.Pos = graft.Position{Partition: topic, Offset: line.Offset}
			w, rule, err := m.MapRecord(rec, lim)
			switch {
			case errors.Is(err, mapping.ErrUnmapped):
				sum.Unmapped++
				fmt.Fprintf(stderr, "%s:%d: %v\n", name, line.Offset, err)
			case err != nil:
				sum.Failed++
				fmt.Fprintf(stderr, "%s:%d: %v\n", name, line.Offset, err)
			case w == nil:
				sum.Skipped++
			default:
				sum.Mapped++
				sum.ByRule[rule]++
				out.Write(w.AppendJSON(nil))
				out.WriteByte('\n')
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			break
		}
	}
	out.Flush()
	var rules []string
	for r, n := range sum.ByRule {
		rules = append(rules, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(rules)
	fmt.Fprintf(stderr, "%d events: %d mapped (%s), %d skipped, %d unmapped, %d failed\n",
		sum.Events, sum.Mapped, strings.Join(rules, ", "), sum.Skipped, sum.Unmapped, sum.Failed)
	if asJSON {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stderr, string(b))
	}
	if sum.Unmapped+sum.Failed > 0 {
		return fmt.Errorf("%d events did not map", sum.Unmapped+sum.Failed)
	}
	return nil
}
