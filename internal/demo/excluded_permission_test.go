package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// An excluded prefix is refused by IAM, not only skipped by the code: a
// backfill under the deployed statements (with their Deny) brings the
// objects in scope onto the target and leaves the excluded one; the
// encrypt role's own credentials, used directly as a compromised role
// would, are then refused HeadObject and UpdateObjectEncryption under the
// excluded prefix, and only the Deny refuses them (without it the same
// calls succeed).
func TestExcludedPrefixRefusedByIAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emu, admin := startEmulator(ctx, t)
	kmsc, s3c, sqsc := kms.NewFromConfig(admin), s3.NewFromConfig(admin, emulator.PathStyle), sqs.NewFromConfig(admin)
	key, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	target := aws.ToString(key.KeyMetadata.Arn)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ex-data")}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"public/a.txt", "private/secret.txt", "notes/private/b.txt"} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ex-data"), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	q := createQueues(ctx, t, sqsc, "ex")
	pol, err := policy.Parse([]byte(`{"buckets":{"ex-data":{"kmsKeyArn":"` + target + `","bucketKeyEnabled":true,"excludePrefixes":["private/"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	res := EmulatorResources(emu, pol, "ex-inventory", q)
	deployed := permissions.Encrypt(res)
	if !strings.Contains(string(permissions.PolicyDocument(deployed)), `"Effect":"Deny"`) {
		t.Fatalf("the deployed statements have no Deny: %s", permissions.PolicyDocument(deployed))
	}
	roles, err := BindRoles(emu, deployed, permissions.Planner(res))
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(admin, pol, q, pipeline.Options{EncryptAWS: &roles.Encrypt, PlannerAWS: &roles.Planner})
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.Control),
		MessageBody: aws.String(`{"type":"listing","bucket":"ex-data"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Runner.RunUntilIdle(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for k, onTarget := range map[string]bool{"public/a.txt": true, "notes/private/b.txt": true, "private/secret.txt": false} {
		st, ok := emu.Inspect("ex-data", k, "")
		if !ok || (st.KMSKeyARN == target) != onTarget {
			t.Errorf("%s ends %s %s, on the target: want %v", k, st.Encryption, st.KMSKeyARN, onTarget)
		}
	}
	for outcome, n := range p.Tally.Snapshot().Outcomes {
		if strings.HasPrefix(outcome, "failed") {
			t.Errorf("%d objects ended %s", n, outcome)
		}
	}

	role := s3.NewFromConfig(roles.Encrypt, emulator.PathStyle)
	calls := func() []error {
		_, head := role.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ex-data"), Key: aws.String("private/secret.txt")})
		_, update := role.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("ex-data"), Key: aws.String("private/secret.txt"),
			ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(target)}}})
		return []error{head, update}
	}
	for i, err := range calls() {
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || (apiErr.ErrorCode() != "AccessDenied" && apiErr.ErrorCode() != "Forbidden") {
			t.Errorf("call %d on the excluded object under the deployed statements: %v, want AccessDenied", i, err)
		}
	}
	if st, _ := emu.Inspect("ex-data", "private/secret.txt", ""); st.KMSKeyARN == target {
		t.Error("the excluded object was re-encrypted")
	}
	var withoutDeny []permissions.Statement
	for _, st := range deployed {
		if st.Sid != permissions.DenyExcludedSid {
			withoutDeny = append(withoutDeny, st)
		}
	}
	if err := emu.BindPolicy(EncryptAccessKey, permissions.PolicyDocument(withoutDeny)); err != nil {
		t.Fatal(err)
	}
	for i, err := range calls() {
		if err != nil {
			t.Errorf("call %d on the excluded object without the Deny: %v, want it allowed (the Deny is what refuses it)", i, err)
		}
	}
}

// createQueues creates a deployment's four queues, named after prefix.
func createQueues(ctx context.Context, t *testing.T, sqsc *sqs.Client, prefix string) pipeline.Queues {
	t.Helper()
	var q pipeline.Queues
	for _, x := range []struct {
		url  *string
		name string
	}{{&q.Work, "-work"}, {&q.WorkDLQ, "-work-dlq"}, {&q.Control, "-control"}, {&q.ControlDLQ, "-control-dlq"}} {
		out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix + x.name)})
		if err != nil {
			t.Fatal(err)
		}
		*x.url = aws.ToString(out.QueueUrl)
	}
	return q
}

// startEmulator starts an emulator for the test and returns it with the
// administrator's configuration (no policy bound).
func startEmulator(ctx context.Context, t *testing.T) (*emulator.Emulator, aws.Config) {
	t.Helper()
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	return emu, clientConfig(emu.AWSConfig())
}
