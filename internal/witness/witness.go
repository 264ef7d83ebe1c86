package witness

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// Witness names, the last element of every witness subtest's name (make
// test counts the tests run against each by it).
const (
	Emulator = "emulator"
	Moto     = "moto"
)

// Witness is one server to check the product's AWS calls against.
type Witness struct {
	Name     string
	Endpoint string // http://127.0.0.1:PORT
	Cfg      aws.Config
	S3       *s3.Client
	SQS      *sqs.Client
	KMS      *kms.Client
	DynamoDB *dynamodb.Client
	// Emu is the emulator behind the emulator witness; nil for moto,
	// whose state is shared by every test of the binary (see Name).
	Emu *emulator.Emulator
}

// IsMoto reports the moto witness.
func (w Witness) IsMoto() bool { return w.Name == Moto }

// Endpoints starts a fresh emulator and returns it and moto (started once
// per test binary), in that order.
func Endpoints(t testing.TB) []Witness {
	t.Helper()
	return []Witness{EmulatorWitness(t), MotoWitness(t)}
}

// Run runs f as a subtest per witness, named after it.
func Run(t *testing.T, f func(t *testing.T, w Witness)) {
	t.Helper()
	for _, w := range Endpoints(t) {
		t.Run(w.Name, func(t *testing.T) { f(t, w) })
	}
}

// EmulatorWitness starts an emulator for the test.
func EmulatorWitness(t testing.TB) Witness {
	t.Helper()
	e := emutest.Start(t, emulator.Options{})
	return Witness{Name: Emulator, Endpoint: e.Emu.URL(), Cfg: e.Cfg, S3: e.S3, SQS: e.SQS, KMS: e.KMS,
		DynamoDB: dynamodb.NewFromConfig(e.Cfg), Emu: e.Emu}
}

// MotoWitness returns the moto server of this test binary, starting it on
// first use; the test fails, naming the command, when moto cannot start.
func MotoWitness(t testing.TB) Witness {
	t.Helper()
	endpoint, err := motoServer()
	if err != nil {
		t.Fatalf("witness moto: %v", err)
	}
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   awsconf.NewHTTPClient(),
		// The SDK's standard retryer, as production clients have: moto
		// answers an occasional 500 of its own under concurrent requests
		// (an HTML error page from TransactWriteItems), which the SDK
		// retries as it would DynamoDB's InternalServerError.
		Retryer: func() aws.Retryer { return retry.NewStandard() },
	}
	return Witness{Name: Moto, Endpoint: endpoint, Cfg: cfg,
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), SQS: sqs.NewFromConfig(cfg),
		KMS: kms.NewFromConfig(cfg), DynamoDB: dynamodb.NewFromConfig(cfg)}
}

var unique atomic.Int64

// Name is a resource name unique within the test binary (moto's state is
// shared by all its tests): base, a dash and a number, lower case.
func Name(base string) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(base), unique.Add(1))
}

// Key creates a symmetric KMS key on the witness and returns its ARN.
func (w Witness) Key(t testing.TB) string {
	t.Helper()
	out, err := w.KMS.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("witness key")})
	if err != nil {
		t.Fatalf("%s: CreateKey: %v", w.Name, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// Queue creates a queue (its name made unique from base) and returns its
// URL and ARN.
func (w Witness) Queue(t testing.TB, base string, attrs map[string]string) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	q, err := w.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(Name(base)), Attributes: attrs})
	if err != nil {
		t.Fatalf("%s: CreateQueue: %v", w.Name, err)
	}
	a, err := w.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatalf("%s: GetQueueAttributes: %v", w.Name, err)
	}
	return aws.ToString(q.QueueUrl), a.Attributes["QueueArn"]
}
