// Package redisurl reads the redis:// URLs of the shared cache and the
// locker: the client options (failing fast, since the engine retries on its
// own) and Graft's own query parameters, with errors that never show the
// password.
package redisurl

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Parse reads redis://[USER:PASSWORD@]HOST:PORT/DB (rediss:// for TLS).
// what names the setting in errors ("cache", "lock"); params are the query
// parameters Graft takes, returned apart from the client's options.
func Parse(raw, what string, params ...string) (*redis.Options, url.Values, error) {
	u, err := url.Parse(raw)
	shown := "redis://…"
	if err == nil {
		shown = u.Redacted()
	}
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, nil, fmt.Errorf("%s %q: want redis://[USER:PASSWORD@]HOST:PORT/DB or rediss://… for TLS", what, shown)
	}
	q := u.Query()
	ours := url.Values{}
	for k, v := range q {
		if !slices.Contains(params, k) {
			return nil, nil, fmt.Errorf("%s %q: unknown parameter %q (%s)", what, shown, k, strings.Join(params, ", "))
		}
		ours[k] = v
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	ro, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("%s %q: %w", what, shown, err)
	}
	// Fail fast when Redis is down: one retry, one dial retry, a short
	// dial timeout.
	ro.MaxRetries, ro.DialerRetries, ro.DialerRetryTimeout, ro.DialTimeout = 1, 1, 50*time.Millisecond, 2*time.Second
	return ro, ours, nil
}

// Redact hides a URL's password, for messages.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "redis://…"
}
