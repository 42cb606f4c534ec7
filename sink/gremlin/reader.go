package gremlin

import (
	"context"
	"fmt"
	"strconv"
	"time"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
)

// ExplicitIDProperty marks an edge Graft created with an explicit id. A
// Gremlin server gives every edge an id, so without it a reader could not
// tell an edge identified by (label, from, to) from one with an id of its
// own (docs/DESIGN.md keeps them distinct). Readers hide it.
const ExplicitIDProperty = "graft_explicit_id"

// reads: the traversals of the Reader, as steps (values as arguments).

func (b *builder) vertexProjection(t traversal) traversal {
	id := s("by", enum{"id", gremlingo.T.Id})
	if b.dialect == JanusGraph {
		id = s("by", traversal{s("values", b.idProp)})
	}
	return append(t, s("project", "id", "label", "props"), id, s("by", enum{"label", gremlingo.T.Label}), s("by", traversal{s("valueMap")}))
}

func (b *builder) edgeProjection(t traversal) traversal {
	id, from, to := s("by", enum{"id", gremlingo.T.Id}), s("by", traversal{s("outV"), s("id")}), s("by", traversal{s("inV"), s("id")})
	if b.dialect == JanusGraph {
		id = s("by", traversal{s("coalesce", traversal{s("values", b.idProp)}, traversal{s("constant", "")})})
		from = s("by", traversal{s("outV"), s("values", b.idProp)})
		to = s("by", traversal{s("inV"), s("values", b.idProp)})
	}
	return append(t, s("project", "id", "label", "from", "to", "props"), id, s("by", enum{"label", gremlingo.T.Label}), from, to, s("by", traversal{s("valueMap")}))
}

// Vertex implements graft.Reader.
func (st *Store) Vertex(ctx context.Context, id string) (*graft.Vertex, error) {
	t := st.b.vertexProjection(st.b.startV(id))
	rows, err := st.read(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, graft.ErrNotFound
	}
	return st.vertexOf(rows[0])
}

// Edges implements graft.Reader.
func (st *Store) Edges(ctx context.Context, id string, dir graft.Direction, label string) ([]graft.Edge, error) {
	var labels []any
	if label != "" {
		labels = []any{label}
	}
	step := map[graft.Direction]string{graft.Out: "outE", graft.In: "inE"}[dir]
	if step == "" {
		step = "bothE"
	}
	t := st.b.edgeProjection(append(st.b.startV(id), s(step, labels...)))
	rows, err := st.read(ctx, t)
	if err != nil {
		return nil, err
	}
	out := []graft.Edge{}
	seen := map[string]bool{}
	for _, r := range rows {
		e, err := st.edgeOf(r)
		if err != nil {
			return nil, err
		}
		k := e.ID + "\x00" + e.Label + "\x00" + e.From + "\x00" + e.To
		if !seen[k] { // bothE lists a self-loop twice
			seen[k] = true
			out = append(out, *e)
		}
	}
	return out, nil
}

// Export implements graft.Reader: two traversals (g.V()…, g.E()…) whose
// results are handed over as they arrive, never held all at once (see
// stream).
func (st *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	err := st.stream(ctx, st.b.vertexProjection(traversal{s("V")}), func(r map[any]any) error {
		v, err := st.vertexOf(r)
		if err != nil {
			return err
		}
		return vf(v)
	})
	if err != nil {
		return err
	}
	return st.stream(ctx, st.b.edgeProjection(traversal{s("E")}), func(r map[any]any) error {
		e, err := st.edgeOf(r)
		if err != nil {
			return err
		}
		return ef(e)
	})
}

// startV starts at the vertex with Graft id id.
func (b *builder) startV(id string) traversal {
	if b.dialect == JanusGraph {
		return traversal{s("V"), s("has", b.idProp, id)}
	}
	return traversal{s("V", id)}
}

// read runs a read traversal on the reader connection and returns its
// results as maps.
func (st *Store) read(ctx context.Context, t traversal) ([]map[any]any, error) {
	var rows []map[any]any
	err := st.stream(ctx, t, func(r map[any]any) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

// stream runs a read traversal on the reader connection and hands each
// result to each as it arrives. The server sends results in frames of 64
// and the driver buffers a bounded channel of them (its read loop waits
// when it is full), so a read of any size uses bounded memory. The timeout
// bounds the wait for the next result, not the whole read: an export of
// millions of elements takes as long as it takes, a server that stops
// answering does not. When stream returns early (each failed, no answer,
// ctx done), the rest of the results are read and dropped in the
// background: a reader that stopped would stall the driver's connection
// for every other request on it.
func (st *Store) stream(ctx context.Context, t traversal, each func(map[any]any) error) error {
	type started struct {
		rs  gremlingo.ResultSet
		err error
	}
	start := make(chan started, 1)
	go func() {
		gt := st.reader.GetGraphTraversal()
		t.appendTo(gt.Bytecode)
		rs, err := gt.GetResultSet()
		start <- started{rs, err}
	}()
	timer := time.NewTimer(st.cfg.Timeout)
	defer timer.Stop()
	noAnswer := func(err error) error {
		return graft.NewError(graft.Transient, fmt.Errorf("%s: no answer: %w", st.readerURL, err))
	}
	var rs gremlingo.ResultSet
	select {
	case s := <-start:
		if s.err != nil {
			return classify(fmt.Errorf("%s: %w", st.readerURL, s.err))
		}
		rs = s.rs
	case <-timer.C:
		return noAnswer(context.DeadlineExceeded)
	case <-ctx.Done():
		return ctx.Err()
	}
	results := rs.Channel()
	finished := false
	defer func() {
		if !finished {
			go func() {
				for range results {
				}
			}()
		}
	}()
	for {
		select {
		case r, ok := <-results:
			if !ok {
				finished = true
				if err := rs.GetError(); err != nil {
					return classify(fmt.Errorf("%s: %w", st.readerURL, err))
				}
				return nil
			}
			m, isMap := r.GetInterface().(map[any]any)
			if !isMap {
				return fmt.Errorf("%s: unexpected result %T", st.readerURL, r.GetInterface())
			}
			if err := each(m); err != nil {
				return err
			}
			timer.Reset(st.cfg.Timeout)
		case <-timer.C:
			return noAnswer(context.DeadlineExceeded)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (st *Store) vertexOf(r map[any]any) (*graft.Vertex, error) {
	v := &graft.Vertex{ID: idString(r["id"]), Props: graft.Props{}}
	v.Label, _ = r["label"].(string)
	props, _ := r["props"].(map[any]any)
	for k, val := range props {
		name, _ := k.(string)
		if name == "" || (st.b.dialect == JanusGraph && name == st.b.idProp) {
			continue
		}
		if list, ok := val.([]any); ok { // vertex properties come as lists
			if len(list) == 0 {
				continue
			}
			val = list[0]
		}
		gv, err := valueOf(val)
		if err != nil {
			return nil, graft.NewError(graft.Permanent, fmt.Errorf("vertex %q: property %q: %w", v.ID, name, err))
		}
		v.Props[name] = gv
	}
	return v, nil
}

func (st *Store) edgeOf(r map[any]any) (*graft.Edge, error) {
	e := &graft.Edge{From: idString(r["from"]), To: idString(r["to"]), Props: graft.Props{}}
	e.Label, _ = r["label"].(string)
	props, _ := r["props"].(map[any]any)
	explicit := false
	for k, val := range props {
		name, _ := k.(string)
		switch {
		case name == ExplicitIDProperty:
			explicit = true
			continue
		case name == "" || (st.b.dialect == JanusGraph && name == st.b.idProp):
			continue
		}
		gv, err := valueOf(val)
		if err != nil {
			return nil, graft.NewError(graft.Permanent, fmt.Errorf("edge %s %q→%q: property %q: %w", e.Label, e.From, e.To, name, err))
		}
		e.Props[name] = gv
	}
	if explicit || (st.b.dialect == JanusGraph && idString(r["id"]) != "") {
		e.ID = idString(r["id"])
	}
	return e, nil
}

func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.Itoa(int(x))
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func valueOf(v any) (graft.Value, error) {
	switch x := v.(type) {
	case string:
		return graft.String(x), nil
	case int64:
		return graft.Int(x), nil
	case int32:
		return graft.Int(int64(x)), nil
	case int16:
		return graft.Int(int64(x)), nil
	case int8:
		return graft.Int(int64(x)), nil
	case float64:
		return graft.Float(x), nil
	case float32:
		return graft.Float(float64(x)), nil
	case bool:
		return graft.Bool(x), nil
	}
	return graft.Value{}, fmt.Errorf("unsupported value %T", v)
}
