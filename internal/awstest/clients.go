package awstest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// UseEnv points the process's default credential chain at the emulators'
// credentials and region, with no shared files and no instance metadata,
// for code that loads the default chain (graft run, graft produce, and
// processes the test starts, which inherit the environment).
func UseEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Config is an AWS configuration with the emulators' credentials and region.
func Config(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Kinesis is a client of the Kinesis emulator at endpoint.
func Kinesis(t testing.TB, endpoint string) *kinesis.Client {
	return kinesis.NewFromConfig(Config(t), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// DynamoDB is a client of the DynamoDB emulator at endpoint.
func DynamoDB(t testing.TB, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(t), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// CreateStream creates a stream of the given shards and waits until it is
// active.
func CreateStream(t testing.TB, kc *kinesis.Client, name string, shards int) {
	t.Helper()
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatal(err)
	}
	WaitStream(t, kc, name)
}

// WaitStream waits until a stream is active (after a create or a reshard).
func WaitStream(t testing.TB, kc *kinesis.Client, name string) {
	t.Helper()
	if err := kinesis.NewStreamExistsWaiter(kc).Wait(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
}
