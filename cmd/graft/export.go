package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/app"
)

const exportAbout = `
Prints the graph on stdout as NDJSON, one element a line: every vertex (by
id), then every edge (by from, label, to):

  {"type":"vertex","id":"d1","label":"device","props":{"n":1}}
  {"type":"edge","label":"installed","from":"d1","to":"s1","props":{}}

An edge with an explicit id carries "id". Numbers come back exactly as
written: integers as integers (int64), floats with a decimal point or an
exponent. Reads one consistent snapshot; safe while another graft writes.`

func runExport(ctx context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	var f sinkFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("export", "graft export [flags]", exportAbout)
	f.register(fs)
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	s, err := app.OpenSink(ctx, f.c.SinkURL(), true)
	if err != nil {
		return err
	}
	defer s.Close()
	w := bufio.NewWriterSize(stdout, 256<<10)
	var buf []byte
	var vertices, edges int
	err = s.Export(ctx,
		func(v *graft.Vertex) error {
			buf = graft.AppendVertexLine(buf[:0], v)
			vertices++
			_, err := w.Write(buf)
			return err
		},
		func(e *graft.Edge) error {
			buf = graft.AppendEdgeLine(buf[:0], e)
			edges++
			_, err := w.Write(buf)
			return err
		})
	if err != nil {
		// What was read is whole and printed (it may help to recover); the
		// exit status and this message say the export is not.
		w.Flush()
		return fmt.Errorf("the export is incomplete: it stopped after %d vertices and %d edges: %w", vertices, edges, err)
	}
	return w.Flush()
}
