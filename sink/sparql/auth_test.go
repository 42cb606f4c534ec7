package sparql

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder answers every request with an empty result and keeps it.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.body = append(r.body, b)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/sparql-results+json")
	io.WriteString(w, `{"head":{"vars":[]},"results":{"bindings":[]}}`)
}

// Basic auth from the URL, a bearer token, and Neptune IAM: a SigV4
// signature over the exact body, verifiable from what the server received;
// the token never shows in errors.
func TestAuth(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	open := func(raw string) *Store {
		cfg, err := ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	open("sparql+http://graft:s3cret@" + host + "/sparql")
	open("sparql+http://" + host + "/sparql?token=tok-123")
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s := open("sparql+http://" + host + "/sparql?iam=true&region=us-east-1")

	if u, p, ok := rec.reqs[0].BasicAuth(); !ok || u != "graft" || p != "s3cret" {
		t.Errorf("basic auth: %q %q %v", u, p, ok)
	}
	if a := rec.reqs[1].Header.Get("Authorization"); a != "Bearer tok-123" {
		t.Errorf("bearer: %q", a)
	}
	got := rec.reqs[2]
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/us-east-1/neptune-db/aws4_request") {
		t.Fatalf("IAM: Authorization %q", auth)
	}
	at, err := time.Parse("20060102T150405Z", got.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := http.NewRequest(http.MethodPost, "http://"+got.Host+got.URL.Path, bytes.NewReader(rec.body[2]))
	again.Header.Set("Content-Type", got.Header.Get("Content-Type"))
	again.Header.Set("Accept", got.Header.Get("Accept"))
	creds, _ := s.iam.creds.Retrieve(context.Background())
	sum := sha256hex(rec.body[2])
	if err := s.iam.signer.SignHTTP(context.Background(), creds, again, sum, "neptune-db", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	if again.Header.Get("Authorization") != auth {
		t.Fatalf("the signature does not cover the body and host received:\n got  %s\n want %s", auth, again.Header.Get("Authorization"))
	}
	if _, err := ParseURL("sparql+http://" + host + "/sparql?token=tok-123&bogus=1"); err == nil || strings.Contains(err.Error(), "tok-123") {
		t.Fatalf("an error must not show the token: %v", err)
	}
}
