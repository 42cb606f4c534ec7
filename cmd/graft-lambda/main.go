// Command graft-lambda is the Lambda handler for Kinesis and Kafka (Amazon
// MSK, self-managed Apache Kafka) event source mappings: each invocation's
// batch runs through the same engine as graft run, and the answer is a
// partial batch response (docs/kinesis.md, deploy/sam/template.yaml).
//
// Environment:
//
//	GRAFT_SINK            the sink URL (required): postgres://…, gremlin+wss://…, sparql+https://…
//	GRAFT_MAPPING         a mapping rules file shipped with the function (optional)
//	GRAFT_DLQ             kafka://BROKERS/TOPIC: dead letters go there and count as done
//	                      (unset: a dead letter is a failed record; the mapping's retry
//	                      and on-failure destination settings apply)
//	GRAFT_MAX_RECORD_AGE  e.g. 24h: older records are dead letters (class expired)
//	GRAFT_FAILURE_MODE    partial (default): a partial batch response, for mappings with
//	                      ReportBatchItemFailures; error: an invocation with records not
//	                      done fails whole and Lambda retries the whole batch (for mappings
//	                      without it, which would ignore a partial response and lose records)
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/lambdahandler"
	"github.com/graftdb/graft/mapping"
	"github.com/graftdb/graft/sinks"
	"github.com/graftdb/graft/source/kafka"
)

func main() {
	h, err := setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "graft-lambda:", err)
		os.Exit(1)
	}
	lambda.Start(h.Invoke)
}

func setup(ctx context.Context) (*lambdahandler.Handler, error) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	url := os.Getenv("GRAFT_SINK")
	if url == "" {
		return nil, fmt.Errorf("GRAFT_SINK is not set")
	}
	sink, err := sinks.Open(ctx, url, false)
	if err != nil {
		return nil, err
	}
	cfg := engine.Default()
	cfg.Logger = log
	if v := os.Getenv("GRAFT_MAX_RECORD_AGE"); v != "" {
		if cfg.MaxRecordAge, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("GRAFT_MAX_RECORD_AGE=%q: %w", v, err)
		}
	}
	if path := os.Getenv("GRAFT_MAPPING"); path != "" {
		m, err := mapping.Load(path)
		if err != nil {
			return nil, fmt.Errorf("GRAFT_MAPPING: %w", err)
		}
		cfg.Decode = m.Decoder(cfg.Limits)
	}
	h := &lambdahandler.Handler{Sink: sink, Config: cfg}
	switch v := os.Getenv("GRAFT_FAILURE_MODE"); v {
	case "", "partial":
	case "error":
		h.FailWhole = true
	default:
		return nil, fmt.Errorf("GRAFT_FAILURE_MODE=%q: partial (a partial batch response) or error (fail the whole invocation)", v)
	}
	if v := os.Getenv("GRAFT_DLQ"); v != "" {
		t, err := kafka.ParseTarget(v)
		if err != nil {
			return nil, fmt.Errorf("GRAFT_DLQ: %w", err)
		}
		if h.Letters, err = kafka.NewDeadLetterTopic(t, kafka.Security{}); err != nil {
			return nil, fmt.Errorf("GRAFT_DLQ: %w", err)
		}
	}
	return h, nil
}
