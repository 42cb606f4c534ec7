// Package gremlintest is a Gremlin server for tests: the WebSocket protocol
// and GraphBinary framing of a real one, so that the real driver runs end to
// end, with answers the test chooses (success, Neptune's error payloads, a
// dropped connection, a slow answer). It does not evaluate traversals.
package gremlintest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Reply is what the test server answers to one request.
type Reply struct {
	Status  uint32 // 200 success; Neptune answers errors with 500
	Message string // the status message: Neptune's JSON error payload
	Drop    bool   // close the connection instead of answering
	Delay   time.Duration
	// Result is the answer's data on success: a list of results, each a
	// string, int64, int32, float64, bool, nil, []any or map[string]any.
	// nil: one long (a count).
	Result []any
}

// Server is a Gremlin server for tests: the WebSocket protocol and
// GraphBinary framing of a real one, so that the real driver runs end to
// end. It records each request and answers what answer says.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests [][]byte // raw GraphBinary request messages
	upgrades []*http.Request
	answer   func(n int, req []byte) Reply
}

// Start starts a server answering with answer(n, request) to the n-th request (from 1).
func Start(t testing.TB, answer func(n int, req []byte) Reply) *Server {
	s := &Server{answer: answer}
	up := websocket.Upgrader{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.upgrades = append(s.upgrades, r.Clone(r.Context()))
		s.mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var wmu sync.Mutex
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.requests = append(s.requests, msg)
			n := len(s.requests)
			s.mu.Unlock()
			rp := s.answer(n, msg)
			if rp.Drop {
				c.UnderlyingConn().Close()
				return
			}
			go func() {
				time.Sleep(rp.Delay)
				wmu.Lock()
				defer wmu.Unlock()
				c.WriteMessage(websocket.BinaryMessage, response(requestID(msg), rp))
			}()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// SinkURL is the sink URL of the server, with query parameters params ("?timeout=1s").
func (s *Server) SinkURL(params string) string {
	return "gremlin+ws://" + strings.TrimPrefix(s.URL, "http://") + "/gremlin" + params
}

// Count is the number of requests received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// requestID reads a GraphBinary request's id: after the mime type and the
// version byte.
func requestID(msg []byte) []byte {
	i := 1 + int(msg[0]) + 1
	return msg[i : i+16]
}

// response encodes a GraphBinary response: version, id, status code,
// message, empty attributes and meta, and the result: a list holding one
// long on success, null otherwise.
func response(id []byte, rp Reply) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x81, 0x00})
	b.Write(id)
	binary.Write(&b, binary.BigEndian, rp.Status)
	if rp.Message == "" {
		b.WriteByte(0x01)
	} else {
		b.WriteByte(0x00)
		binary.Write(&b, binary.BigEndian, uint32(len(rp.Message)))
		b.WriteString(rp.Message)
	}
	binary.Write(&b, binary.BigEndian, uint32(0)) // attributes
	binary.Write(&b, binary.BigEndian, uint32(0)) // meta
	if rp.Status == 200 {
		result := rp.Result
		if result == nil {
			result = []any{int64(1)}
		}
		writeValue(&b, result)
	} else {
		b.Write([]byte{0xfe, 0x01}) // null
	}
	return b.Bytes()
}

func ok(int, []byte) Reply { return Reply{Status: 200} }

// Request returns the i-th request received (from 0), raw.
func (s *Server) Request(i int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i]
}

// Upgrades returns the WebSocket upgrade requests received (one per
// connection), with their headers.
func (s *Server) Upgrades() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.upgrades...)
}

// OK answers success to everything.
func OK(int, []byte) Reply { return Reply{Status: 200} }

// NeptuneError is Neptune's error payload for code.
func NeptuneError(code, detail string) string {
	return `{"requestId":"9c1f0a38-0000-4000-8000-000000000000","code":"` + code + `","detailedMessage":"` + detail + `"}`
}

// writeValue writes a fully qualified GraphBinary value.
func writeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.Write([]byte{0xfe, 0x01})
	case string:
		b.Write([]byte{0x03, 0x00})
		binary.Write(b, binary.BigEndian, uint32(len(x)))
		b.WriteString(x)
	case int64:
		b.Write([]byte{0x02, 0x00})
		binary.Write(b, binary.BigEndian, x)
	case int32:
		b.Write([]byte{0x01, 0x00})
		binary.Write(b, binary.BigEndian, x)
	case float64:
		b.Write([]byte{0x07, 0x00})
		binary.Write(b, binary.BigEndian, x)
	case bool:
		b.Write([]byte{0x27, 0x00})
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case []any:
		b.Write([]byte{0x09, 0x00})
		binary.Write(b, binary.BigEndian, uint32(len(x)))
		for _, e := range x {
			writeValue(b, e)
		}
	case map[string]any:
		b.Write([]byte{0x0a, 0x00})
		binary.Write(b, binary.BigEndian, uint32(len(x)))
		for k, e := range x {
			writeValue(b, k)
			writeValue(b, e)
		}
	default:
		panic(fmt.Sprintf("gremlintest: cannot encode %T", v))
	}
}
