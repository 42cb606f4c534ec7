package graft

import "strconv"

// AppendJSON appends the write in the wire format (one JSON object, no
// newline). Decode(w.AppendJSON(nil)) gives back an equal write.
func (w *Write) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if w.Key != "" {
		field("key")
		b = appendJSONString(b, w.Key)
	}
	if w.ID != "" {
		field("id")
		b = appendJSONString(b, w.ID)
	}
	if w.Version != 0 {
		field("version")
		b = strconv.AppendInt(b, w.Version, 10)
	}
	field("ops")
	b = append(b, '[')
	for i := range w.Ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = w.Ops[i].appendJSON(b)
	}
	return append(b, ']', '}')
}

func (op *Op) appendJSON(b []byte) []byte {
	b = append(b, `{"op":"`...)
	b = append(b, op.Kind.String()...)
	b = append(b, '"')
	str := func(name, v string) {
		if v != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = appendJSONString(b, v)
		}
	}
	switch op.Kind {
	case DropVertexProps:
		b = append(b, `,"element":"vertex"`...)
	case DropEdgeProps:
		b = append(b, `,"element":"edge"`...)
	}
	str("id", op.ID)
	str("label", op.Label)
	str("from", op.From)
	if op.Kind == ReplaceEdges {
		b = append(b, `,"to":[`...)
		for i, t := range op.Targets {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	} else {
		str("to", op.To)
	}
	if len(op.Props) > 0 {
		b = append(b, `,"props":`...)
		b = op.Props.AppendJSON(b)
	}
	if op.Kind == DropVertexProps || op.Kind == DropEdgeProps {
		b = append(b, `,"keys":[`...)
		for i, k := range op.Keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
