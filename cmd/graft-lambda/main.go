// Command graft-lambda is the Lambda handler for Kinesis and Kafka (Amazon
// MSK, self-managed Apache Kafka) event source mappings: each invocation's
// batch runs through the same engine as graft run, and the answer is a
// partial batch response (docs/kinesis.md, deploy/sam/template.yaml).
//
// Every setting of graft.yaml is read from the environment (package config:
// GRAFT_ and the setting's path in capitals, batch.max_writes as
// GRAFT_BATCH_MAX_WRITES), over the file GRAFT_CONFIG names if any. The ones
// a function needs most:
//
//	GRAFT_SINK            the sink URL (required): postgres://…, gremlin+wss://…, sparql+https://…
//	GRAFT_MAPPING         a mapping rules file shipped with the function (optional)
//	GRAFT_CACHE_USE       redis://…: the write cache shared by every invocation (default
//	                      off; memory is refused: invocations for other shards run at
//	                      the same time and can change what one cached)
//	GRAFT_LIMITS_MAX_RECORD_AGE (or GRAFT_MAX_RECORD_AGE)  e.g. 24h: older records are
//	                      dead letters (class expired)
//
// and two of the handler's own:
//
//	GRAFT_DLQ             kafka://BROKERS/TOPIC: dead letters go there and count as done
//	                      (unset: a dead letter is a failed record; the mapping's retry
//	                      and on-failure destination settings apply)
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

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/source/lambda"
)

func main() {
	h, err := setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "graft-lambda:", err)
		os.Exit(1)
	}
	awslambda.Start(h.Invoke)
}

// setup reads the configuration from the environment and assembles the
// handler.
func setup(ctx context.Context) (*lambda.Handler, error) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := config.Default()
	if path := os.Getenv("GRAFT_CONFIG"); path != "" {
		var err error
		if c, err = config.Load(path); err != nil {
			return nil, fmt.Errorf("GRAFT_CONFIG: %w", err)
		}
	}
	c, err := config.FromEnv(c, lookupEnv)
	if err != nil {
		return nil, err
	}
	h, err := app.Lambda(ctx, c, os.Getenv("GRAFT_DLQ"), log)
	if err != nil {
		return nil, err
	}
	switch v := os.Getenv("GRAFT_FAILURE_MODE"); v {
	case "", "partial":
	case "error":
		h.FailWhole = true
	default:
		return nil, fmt.Errorf("GRAFT_FAILURE_MODE=%q: partial (a partial batch response) or error (fail the whole invocation)", v)
	}
	return h, nil
}

// lookupEnv finds a setting's variable; an empty one is unset, and
// GRAFT_MAX_RECORD_AGE is the older name of GRAFT_LIMITS_MAX_RECORD_AGE.
func lookupEnv(name string) (string, bool) {
	v := os.Getenv(name)
	if v == "" && name == config.EnvName("limits.max_record_age") {
		v = os.Getenv("GRAFT_MAX_RECORD_AGE")
	}
	return v, v != ""
}
