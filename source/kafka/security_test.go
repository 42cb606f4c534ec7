package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/graftdb/graft/source/kafka"
)

// selfSigned returns a server certificate for 127.0.0.1 and the PEM file of
// its CA (itself).
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

// Every SASL mechanism, and TLS with a CA file: records produced through the
// Producer are consumed through the Source with the same settings; a wrong
// password is refused with an error that says so.
func TestSecurity(t *testing.T) {
	cert, caFile := selfSigned(t)
	for _, tc := range []struct {
		mech string
		tls  bool
	}{{"PLAIN", true}, {"SCRAM-SHA-256", false}, {"SCRAM-SHA-512", true}} {
		t.Run(fmt.Sprintf("%s/tls=%v", tc.mech, tc.tls), func(t *testing.T) {
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic), kfake.EnableSASL(), kfake.Superuser(tc.mech, "graft", "s3cret")}
			var sec kafka.Security
			sec.SASL.Mechanism, sec.SASL.Username, sec.SASL.Password = tc.mech, "graft", "s3cret"
			if tc.tls {
				opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
				sec.TLS.CAFile = caFile
			}
			if err := sec.Validate(); err != nil {
				t.Fatal(err)
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			target := kafka.Target{Brokers: c.ListenAddrs(), Topic: topic}
			prod, err := kafka.NewProducer(target, sec)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			if err := prod.Ping(ctx); err != nil {
				t.Fatalf("ping with the right credentials: %v", err)
			}
			var values [][]byte
			var keys []string
			for i := range 20 {
				keys = append(keys, fmt.Sprintf("k%d", i%4))
				values = append(values, fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, i))
			}
			positions, err := prod.Publish(ctx, values, keys)
			if err != nil || len(positions) != 20 {
				t.Fatalf("publish: %v %v", positions, err)
			}
			src, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topics: []string{topic}, Group: "g", Security: sec}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got := map[string]string{}
			for len(got) < 20 {
				recs, err := src.Fetch(ctx)
				if err != nil {
					t.Fatalf("fetch after %d records: %v", len(got), err)
				}
				for _, r := range recs {
					got[fmt.Sprintf("%s:%d", r.Pos.Partition, r.Pos.Offset)] = r.Key + " " + string(r.Value)
				}
			}
			for i, p := range positions {
				if want := keys[i] + " " + string(values[i]); got[fmt.Sprintf("%s:%d", p.Partition, p.Offset)] != want {
					t.Fatalf("record %d at %v: got %q, want %q", i, p, got[fmt.Sprintf("%s:%d", p.Partition, p.Offset)], want)
				}
			}

			bad := sec
			bad.SASL.Password = "wrong"
			badProd, err := kafka.NewProducer(target, bad)
			if err != nil {
				t.Fatal(err)
			}
			defer badProd.Close()
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			if err := badProd.Ping(pctx); err == nil || !strings.Contains(err.Error(), "kafka.sasl") {
				t.Fatalf("a wrong password must be refused with an authentication error, got %v", err)
			}
		})
	}
}

func TestSecurityValidate(t *testing.T) {
	var s kafka.Security
	s.SASL.Mechanism = "GSSAPI"
	s.TLS.CertFile = "/nonexistent/cert.pem"
	err := s.Validate()
	for _, want := range []string{`kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`, "kafka.tls.cert_file and kafka.tls.key_file go together", "kafka.tls.cert_file: stat /nonexistent/cert.pem"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	s = kafka.Security{}
	s.SASL.Mechanism = "SCRAM-SHA-512"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "kafka.sasl.username: required") {
		t.Errorf("mechanism without user: %v", err)
	}
	s.SASL.Username, s.SASL.Password = "u", "p"
	if err := s.Validate(); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
	if m := s.Masked(); m.SASL.Password == "p" {
		t.Error("Masked shows the password")
	}
}

func TestParseURL(t *testing.T) {
	c, err := kafka.ParseURL(`kafka://b1:9092,b2:9092/graph\.write\..*?group=g&start=latest&balancer=co-partitioned&dlq=graph.dlq&produce=graph.write.In`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Regex || c.Group != "g" || c.Start != "latest" || c.Balancer != "co-partitioned" || len(c.Brokers) != 2 {
		t.Fatalf("parsed %+v", c)
	}
	dt, err := c.DeadLetterTarget()
	if err != nil || dt.Topic != "graph.dlq" || strings.Join(dt.Brokers, ",") != "b1:9092,b2:9092" {
		t.Fatalf("dead-letter target %+v %v", dt, err)
	}
	pt, ok := c.ProduceTarget()
	if !ok || pt.Topic != "graph.write.In" {
		t.Fatalf("produce target %+v %v", pt, ok)
	}
	c, err = kafka.ParseURL(`kafka://b1/a?group=g&dlq=kafka://other:9093/dead`)
	if err != nil {
		t.Fatal(err)
	}
	if dt, _ := c.DeadLetterTarget(); dt.String() != "kafka://other:9093/dead" {
		t.Fatalf("dlq URL: %v", dt)
	}
	if pt, ok := c.ProduceTarget(); !ok || pt.Topic != "a" {
		t.Fatalf("the only topic is the produce target: %+v", pt)
	}
	c, _ = kafka.ParseURL(`kafka://b1/a,b?group=g`)
	if _, ok := c.ProduceTarget(); ok {
		t.Fatal("two topics and no produce=: there is no produce target")
	}
	for raw, want := range map[string]string{
		"kafka://b1/a":                         "?group= are required",
		"kafka://b1/a?group=g&grup=x":          `unknown parameter "grup"`,
		"kafka://b1/a?group=g&start=yesterday": `start="yesterday"`,
		"kafka://b1/a?group=g&balancer=range":  `balancer="range"`,
		"kafka://b1/a?group=g&dlq=kafka://b1/": "dlq:",
		"kafka://b1/a?group=g&dlq=a/b":         "dlq:",
		"kafka://b1/a?group=g&produce=x,y":     `produce="x,y"`,
		`kafka://b1/graph\.write\.(?group=g`:   "regex",
		"nats://b1/a?group=g":                  "want kafka://",
	} {
		if _, err := kafka.ParseURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want an error with %q, got %v", raw, want, err)
		}
	}
}
