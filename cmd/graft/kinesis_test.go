package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/internal/awstest"
)

// graft produce --to kinesis:// then graft run --source kinesis://: the
// graph equals the model (order per key kept through PutRecords).
func TestProduceAndRunWithKinesis(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	t.Setenv("AWS_ACCESS_KEY_ID", awstest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awstest.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(awstest.Region))
	if err != nil {
		t.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kEndpoint) })
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("writes"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	if err := kinesis.NewStreamExistsWaiter(kc).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("writes")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	wl, lines := seedWorkload(t, 8, 3, 10, 4)
	lines = append(lines, `{"ops":[{"op":"nope"}]}`)
	to := "kinesis://writes?region=" + awstest.Region + "&endpoint=" + kEndpoint
	r := graftCmd(t, nil, "produce", "--to", to, "--json", writeFile(t, lines...))
	if r.code != 1 || !strings.Contains(r.stdout, `"produced":`+strconv.Itoa(len(wl.Writes))) || !strings.Contains(r.stderr, `unknown op "nope"`) {
		t.Fatalf("produce: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	dir, addr := t.TempDir(), freeAddr(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() {
		done <- graftCtx(rctx, t, nil, "run", "--data-dir", dir, "--listen", addr, "--source", to+"&dynamodb_endpoint="+dEndpoint)
	}()
	n := int64(len(wl.Writes))
	waitStatus(t, addr, 60*time.Second, func(st api.Status) bool { return st.Committed == n && st.SourceLag == 0 && st.Pending == 0 },
		func() string { cancel(); return (<-done).stderr })
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if d := diffExport(t, exp.stdout, wl.Model); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}
