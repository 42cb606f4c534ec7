package gremlin

import (
	"context"
	"fmt"
	"strconv"

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

// Export implements graft.Reader.
func (st *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	rows, err := st.read(ctx, st.b.vertexProjection(traversal{s("V")}))
	if err != nil {
		return err
	}
	for _, r := range rows {
		v, err := st.vertexOf(r)
		if err != nil {
			return err
		}
		if err := vf(v); err != nil {
			return err
		}
	}
	rows, err = st.read(ctx, st.b.edgeProjection(traversal{s("E")}))
	if err != nil {
		return err
	}
	for _, r := range rows {
		e, err := st.edgeOf(r)
		if err != nil {
			return err
		}
		if err := ef(e); err != nil {
			return err
		}
	}
	return nil
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
	ctx, cancel := context.WithTimeout(ctx, st.cfg.Timeout)
	defer cancel()
	type answer struct {
		rows []map[any]any
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		gt := st.reader.GetGraphTraversal()
		t.appendTo(gt.Bytecode)
		rs, err := gt.GetResultSet()
		if err != nil {
			done <- answer{err: err}
			return
		}
		results, err := rs.All()
		if err != nil {
			done <- answer{err: err}
			return
		}
		var rows []map[any]any
		for _, r := range results {
			m, ok := r.GetInterface().(map[any]any)
			if !ok {
				done <- answer{err: fmt.Errorf("unexpected result %T", r.GetInterface())}
				return
			}
			rows = append(rows, m)
		}
		done <- answer{rows: rows}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			return nil, classify(fmt.Errorf("%s: %w", st.readerURL, a.err))
		}
		return a.rows, nil
	case <-ctx.Done():
		return nil, graft.NewError(graft.Transient, fmt.Errorf("%s: no answer: %w", st.readerURL, ctx.Err()))
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
