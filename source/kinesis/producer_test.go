package kinesis_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/graftdb/graft/internal/awstest"
	ksource "github.com/graftdb/graft/source/kinesis"
)

// A PutRecords endpoint that fails some records (throughput exceeded) on
// their first try: the producer retries each failed record before its key's
// next one, never sends two records of one key in a request, and every key's
// records are stored in order.
func TestProducerKeepsKeyOrderThroughFailures(t *testing.T) {
	var mu sync.Mutex
	stored := map[string][]string{}
	tried := map[string]bool{}
	requests, twice := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Records []struct{ Data, PartitionKey string }
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		defer mu.Unlock()
		requests++
		seen := map[string]bool{}
		type result struct {
			SequenceNumber string `json:",omitempty"`
			ShardId        string `json:",omitempty"`
			ErrorCode      string `json:",omitempty"`
			ErrorMessage   string `json:",omitempty"`
		}
		var out []result
		failed := 0
		for i, rec := range req.Records {
			if seen[rec.PartitionKey] {
				twice++
			}
			seen[rec.PartitionKey] = true
			data, _ := base64.StdEncoding.DecodeString(rec.Data)
			if !tried[string(data)] && (len(data)+i)%3 == 0 {
				tried[string(data)] = true
				failed++
				out = append(out, result{ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "slow down"})
				continue
			}
			stored[rec.PartitionKey] = append(stored[rec.PartitionKey], string(data))
			out = append(out, result{SequenceNumber: fmt.Sprint(len(stored)), ShardId: "shardId-000000000000"})
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"FailedRecordCount": failed, "Records": out})
	}))
	defer srv.Close()
	p, err := ksource.NewProducer(context.Background(), ksource.Config{Stream: "s", Region: awstest.Region, Endpoint: srv.URL,
		AccessKey: awstest.AccessKey, SecretKey: awstest.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	var entries []ksource.Entry
	want := map[string][]string{}
	for i := range 300 {
		k := fmt.Sprintf("k%d", i%7)
		d := fmt.Sprintf("%s-%03d", k, i)
		entries = append(entries, ksource.Entry{Key: k, Data: []byte(d)})
		want[k] = append(want[k], d)
	}
	var doneMu sync.Mutex
	ok := 0
	if err := p.Put(context.Background(), entries, func(_ int, _ ksource.Stored, err error) {
		doneMu.Lock()
		defer doneMu.Unlock()
		if err != nil {
			t.Errorf("entry failed: %v", err)
		}
		ok++
	}); err != nil {
		t.Fatal(err)
	}
	if ok != len(entries) {
		t.Fatalf("%d of %d entries stored", ok, len(entries))
	}
	if twice != 0 {
		t.Fatalf("%d requests held two records of one key", twice)
	}
	if len(tried) == 0 {
		t.Fatal("no record failed: the test cannot tell")
	}
	for k, w := range want {
		if fmt.Sprint(stored[k]) != fmt.Sprint(w) {
			t.Fatalf("key %s stored out of order:\n got  %v\n want %v", k, stored[k], w)
		}
	}
	t.Logf("%d requests, %d records failed once", requests, len(tried))
}
