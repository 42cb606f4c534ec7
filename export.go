package graft

import (
	"encoding/json"
	"fmt"
)

// The export format: one element per line, vertices and edges.
//
//	{"type":"vertex","id":"v1","label":"device","props":{"n":1}}
//	{"type":"edge","label":"installed","from":"v1","to":"s1","props":{}}
//	{"type":"edge","id":"e7","label":"owns","from":"o1","to":"v1","props":{}}

// AppendVertexLine appends the export line of v, newline included.
func AppendVertexLine(b []byte, v *Vertex) []byte {
	b = append(b, `{"type":"vertex","id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"label":`...)
	b = appendJSONString(b, v.Label)
	b = append(b, `,"props":`...)
	b = v.Props.AppendJSON(b)
	return append(b, "}\n"...)
}

// AppendEdgeLine appends the export line of e, newline included.
func AppendEdgeLine(b []byte, e *Edge) []byte {
	b = append(b, `{"type":"edge",`...)
	if e.ID != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, e.ID)
		b = append(b, ',')
	}
	b = append(b, `"label":`...)
	b = appendJSONString(b, e.Label)
	b = append(b, `,"from":`...)
	b = appendJSONString(b, e.From)
	b = append(b, `,"to":`...)
	b = appendJSONString(b, e.To)
	b = append(b, `,"props":`...)
	b = e.Props.AppendJSON(b)
	return append(b, "}\n"...)
}

// ParseExportLine decodes one export line into a vertex or an edge.
func ParseExportLine(line []byte) (*Vertex, *Edge, error) {
	var el struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Label string `json:"label"`
		From  string `json:"from"`
		To    string `json:"to"`
		Props Props  `json:"props"`
	}
	if err := json.Unmarshal(line, &el); err != nil {
		return nil, nil, err
	}
	switch el.Type {
	case "vertex":
		return &Vertex{ID: el.ID, Label: el.Label, Props: el.Props}, nil, nil
	case "edge":
		return nil, &Edge{ID: el.ID, Label: el.Label, From: el.From, To: el.To, Props: el.Props}, nil
	}
	return nil, nil, fmt.Errorf("type: %q is neither vertex nor edge", el.Type)
}
