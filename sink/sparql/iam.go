package sparql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// sigv4 signs requests for Neptune's IAM authentication (service
// neptune-db), with aws-sdk-go-v2's default credential chain behind its
// refreshing cache.
type sigv4 struct {
	creds  aws.CredentialsProvider
	signer *v4.Signer
	region string
}

func newSigV4(ctx context.Context, endpoint, region string) (*sigv4, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if region == "" {
		parts := strings.Split(u.Hostname(), ".")
		for i := 1; i+1 < len(parts); i++ {
			if parts[i+1] == "neptune" {
				region = parts[i]
			}
		}
	}
	if region == "" {
		return nil, fmt.Errorf("iam: no region: add region= to the sink URL (the host %q does not name one)", u.Hostname())
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("iam: AWS configuration: %w", err)
	}
	return &sigv4{creds: cfg.Credentials, signer: v4.NewSigner(), region: region}, nil
}

func (s *sigv4) sign(ctx context.Context, req *http.Request, body []byte) error {
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return s.signer.SignHTTP(ctx, creds, req, sha256hex(body), "neptune-db", s.region, time.Now())
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
