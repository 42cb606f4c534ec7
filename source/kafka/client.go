package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Security is how Graft authenticates to the brokers: the kafka: section of
// graft.yaml. It applies to every Kafka client of a process (source,
// producer, dead-letter topic).
type Security struct {
	TLS struct {
		Enabled            bool   `yaml:"enabled"`
		CAFile             string `yaml:"ca_file"`   // PEM; empty: the system roots
		CertFile           string `yaml:"cert_file"` // client certificate (mutual TLS), PEM
		KeyFile            string `yaml:"key_file"`
		ServerName         string `yaml:"server_name"` // empty: the broker's host name
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	SASL struct {
		Mechanism string `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: none
		Username  string `yaml:"username"`
		Password  string `yaml:"password"`
	} `yaml:"sasl"`
}

// Mechanisms are the SASL mechanisms Graft speaks.
var Mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Validate reports every invalid field, named by its path under kafka.
func (s Security) Validate() error {
	var errs []error
	switch strings.ToUpper(s.SASL.Mechanism) {
	case "":
		if s.SASL.Username != "" {
			errs = append(errs, errors.New("kafka.sasl.mechanism: required when kafka.sasl.username is set ("+strings.Join(Mechanisms, ", ")+")"))
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.SASL.Username == "" {
			errs = append(errs, errors.New("kafka.sasl.username: required with kafka.sasl.mechanism"))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q is not one of %s", s.SASL.Mechanism, strings.Join(Mechanisms, ", ")))
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls.cert_file and kafka.tls.key_file go together"))
	}
	for field, path := range map[string]string{"kafka.tls.ca_file": s.TLS.CAFile, "kafka.tls.cert_file": s.TLS.CertFile, "kafka.tls.key_file": s.TLS.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", field, err))
		}
	}
	return errors.Join(errs...)
}

// Masked returns a copy with the password hidden, for printing.
func (s Security) Masked() Security {
	if s.SASL.Password != "" {
		s.SASL.Password = "********"
	}
	return s
}

// opts turns the settings into client options.
func (s Security) opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tlsOn := s.TLS.Enabled || s.TLS.CAFile != "" || s.TLS.CertFile != ""
	if tlsOn {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify} //nolint:gosec // the user asks for it
		if s.TLS.CAFile != "" {
			pem, err := os.ReadFile(s.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", s.TLS.CAFile)
			}
		}
		if s.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	user, pass := s.SASL.Username, s.SASL.Password
	switch strings.ToUpper(s.SASL.Mechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Plain(func(context.Context) (plain.Auth, error) {
			return plain.Auth{User: user, Pass: pass}, nil
		})))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not one of %s", s.SASL.Mechanism, strings.Join(Mechanisms, ", "))
	}
	return opts, nil
}

// explain adds what to check to a connection error: a broker that refuses
// a TLS handshake or SASL credentials often just closes the connection.
func (s Security) explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		switch {
		case s.SASL.Mechanism != "":
			return fmt.Errorf("%w (the broker closed the connection: check kafka.sasl.mechanism, username and password, and kafka.tls)", err)
		case !s.TLS.Enabled && s.TLS.CAFile == "" && s.TLS.CertFile == "":
			return fmt.Errorf("%w (the broker closed the connection: does it require TLS or SASL? see the kafka: section of the config)", err)
		}
		return fmt.Errorf("%w (the broker closed the connection: check kafka.tls)", err)
	}
	return err
}

// Target is a kafka://BROKER[,BROKER]/TOPIC URL: where the producer and the
// dead-letter topic write.
type Target struct {
	Brokers []string
	Topic   string
}

// ParseTarget reads kafka://BROKER[,BROKER]/TOPIC.
func ParseTarget(raw string) (Target, error) {
	rest, ok := strings.CutPrefix(raw, "kafka://")
	if !ok {
		return Target{}, fmt.Errorf("%q: want kafka://BROKER[,BROKER]/TOPIC", raw)
	}
	hosts, topic, _ := strings.Cut(rest, "/")
	if i := strings.IndexByte(topic, '?'); i >= 0 {
		return Target{}, fmt.Errorf("%q: a topic URL takes no parameters", raw)
	}
	if hosts == "" || topic == "" || strings.ContainsAny(topic, "/,*") {
		return Target{}, fmt.Errorf("%q: want kafka://BROKER[,BROKER]/TOPIC (one topic)", raw)
	}
	return Target{Brokers: strings.Split(hosts, ","), Topic: topic}, nil
}

func (t Target) String() string { return "kafka://" + strings.Join(t.Brokers, ",") + "/" + t.Topic }
