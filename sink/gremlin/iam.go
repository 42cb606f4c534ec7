package gremlin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// emptyPayload is the SHA-256 of an empty body: the WebSocket upgrade has none.
const emptyPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// iamAuth signs every WebSocket upgrade with SigV4 for Neptune IAM
// authentication (service neptune-db). Credentials come from aws-sdk-go-v2's
// default chain (environment, shared config and SSO, web identity, ECS and
// EC2 roles) through its cache, which refreshes them before they expire; a
// new connection always gets a fresh signature.
type iamAuth struct {
	creds  aws.CredentialsProvider
	signer *v4.Signer
	region string
	url    string // https:// form of the endpoint: what is signed
	log    *slog.Logger

	mu      sync.Mutex
	lastErr string
}

// newIAMAuth loads the default credential chain for region (from the
// endpoint's host name when empty).
func newIAMAuth(ctx context.Context, endpoint, region string, log *slog.Logger) (*iamAuth, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if region == "" {
		region = regionOf(u.Hostname())
	}
	if region == "" {
		return nil, fmt.Errorf("iam: no region: add region= to the sink URL (the host %q does not name one)", u.Hostname())
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("iam: AWS configuration: %w", err)
	}
	u.Scheme = "https"
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &iamAuth{creds: cfg.Credentials, signer: v4.NewSigner(), region: region, url: u.String(), log: log}, nil
}

// regionOf reads the region from a Neptune host name:
// NAME.cluster-ID.REGION.neptune.amazonaws.com.
func regionOf(host string) string {
	parts := strings.Split(host, ".")
	for i := 1; i+1 < len(parts); i++ {
		if parts[i+1] == "neptune" {
			return parts[i]
		}
	}
	return ""
}

// provider is the driver's hook: called at every connection.
func (a *iamAuth) provider() gremlingo.AuthInfoProvider {
	return gremlingo.NewDynamicAuth(func() gremlingo.AuthInfoProvider {
		h, err := a.header(context.Background(), time.Now())
		if err != nil {
			a.mu.Lock()
			if a.lastErr != err.Error() { // once per distinct error, not per connection attempt
				a.lastErr = err.Error()
				a.log.Error("neptune IAM: cannot sign the connection; the server will refuse it", "err", err)
			}
			a.mu.Unlock()
			return &gremlingo.AuthInfo{}
		}
		return gremlingo.HeaderAuthInfo(h)
	})
}

// header returns the signed headers of the upgrade request, without Host
// (the WebSocket dialer sets it from the URL; the signature covers it).
func (a *iamAuth) header(ctx context.Context, now time.Time) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil, err
	}
	if err := a.signer.SignHTTP(ctx, creds, req, emptyPayload, "neptune-db", a.region, now); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := req.Header.Clone()
	h.Del("Host")
	return h, nil
}
