package sparql

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/graftdb/graft"
)

// update sends a SPARQL update, form-encoded.
func (s *Store) update(ctx context.Context, text string) error {
	_, _, err := s.post(ctx, "update", text)
	return err
}

// errCapped: the store returned as many rows as it returns at most
// (Virtuoso's ResultSetMaxRows, announced in the X-SPARQL-MaxRows header),
// fewer than the query asked for: the result may lack rows.
type errCapped struct{ max int }

func (e errCapped) Error() string {
	return fmt.Sprintf("the store returns at most %d rows (Virtuoso: ResultSetMaxRows), and this read hit the cap", e.max)
}

// query runs a SELECT or ASK and returns its bindings. limit is the LIMIT
// the query gives itself (0: none). A result that the store capped below
// it fails with errCapped: no read returns part of a result without an
// error.
func (s *Store) query(ctx context.Context, text string, limit int) ([]map[string]Term, error) {
	body, header, err := s.post(ctx, "query", text)
	if err != nil {
		return nil, err
	}
	var r struct {
		Results struct {
			Bindings []map[string]Term `json:"bindings"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, graft.NewError(graft.Transient, fmt.Errorf("%s: results: %w", s.cfg.Endpoint, err))
	}
	if m, err := strconv.Atoi(header.Get("X-SPARQL-MaxRows")); err == nil && m > 0 && len(r.Results.Bindings) >= m && (limit == 0 || m < limit) {
		return nil, errCapped{m}
	}
	return r.Results.Bindings, nil
}

// post sends a form-encoded request (Virtuoso hangs on POST bodies typed
// application/sparql-query) and classifies failures.
func (s *Store) post(ctx context.Context, kind, text string) ([]byte, http.Header, error) {
	form := url.Values{kind: {text}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Endpoint, strings.NewReader(form))
	if err != nil {
		return nil, nil, graft.NewError(graft.Fatal, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/sparql-results+json")
	switch {
	case s.cfg.User != "":
		req.SetBasicAuth(s.cfg.User, s.cfg.Password)
	case s.cfg.Bearer != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.Bearer)
	}
	if s.iam != nil {
		if err := s.iam.sign(ctx, req, []byte(form)); err != nil {
			return nil, nil, graft.NewError(graft.Transient, fmt.Errorf("%s: IAM: %w", s.cfg.Endpoint, err))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, graft.NewError(graft.Reconnect, fmt.Errorf("%s: %w", s.cfg.Endpoint, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, graft.NewError(graft.Transient, fmt.Errorf("%s: %w", s.cfg.Endpoint, err))
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, classify(resp.StatusCode, body, s.cfg.Endpoint)
	}
	return body, resp.Header, nil
}

// classify gives an HTTP failure its class, from the status and the body.
func classify(status int, body []byte, endpoint string) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	err := fmt.Errorf("%s: HTTP %d: %s", endpoint, status, msg)
	switch {
	case strings.Contains(msg, "deadlock") || strings.Contains(msg, "SR172") || strings.Contains(msg, "ConcurrentModification"):
		return graft.NewError(graft.Conflict, err)
	case status == http.StatusRequestEntityTooLarge || strings.Contains(msg, "too long") || strings.Contains(msg, "QueryTooLarge") ||
		strings.Contains(msg, "memory exhausted"):
		return graft.NewError(graft.TooLarge, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return graft.NewError(graft.Fatal, err)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || strings.Contains(msg, "Throttling"):
		return graft.NewError(graft.Throttled, err)
	case status == http.StatusBadRequest:
		return graft.NewError(graft.Permanent, err)
	}
	return graft.NewError(graft.Transient, err)
}
