package main

import (
	"context"
	"errors"

	"github.com/graftdb/graft/sinks"
)

// sinkStore is an open sink and the reader of its graph.
type sinkStore = sinks.Store

// openSink opens a sink (package sinks); a URL it cannot use is a usage
// error (exit code 2).
func openSink(ctx context.Context, url string, mustExist bool) (sinkStore, error) {
	s, err := sinks.Open(ctx, url, mustExist)
	var ue *sinks.URLError
	if errors.As(err, &ue) {
		return nil, usagef("%s", ue.Error())
	}
	return s, err
}
