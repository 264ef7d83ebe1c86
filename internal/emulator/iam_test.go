package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// iamClients are SDK clients signing as one access key.
type iamClients struct {
	s3  *s3.Client
	sqs *sqs.Client
	kms *kms.Client
}

func clientsAs(e *emutest.Env, key string) iamClients {
	cfg := e.Emu.AWSConfigAs(key)
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return iamClients{s3.NewFromConfig(cfg, emulator.PathStyle), sqs.NewFromConfig(cfg), kms.NewFromConfig(cfg)}
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func bind(t *testing.T, e *emutest.Env, key string, statements ...string) {
	t.Helper()
	doc := `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
	if err := e.Emu.BindPolicy(key, []byte(doc)); err != nil {
		t.Fatal(err)
	}
}

// HeadObject, Permissions: a missing key answers 404 only to a caller with
// s3:ListBucket, 403 otherwise; the Object Lock headers need
// s3:GetObjectRetention and s3:GetObjectLegalHold.
func TestIAMHeadObjectAnswersDependOnPermissions(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "locked", true)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("k"), ObjectLockMode: types.ObjectLockModeGovernance,
		ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour)), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}, "x")
	read := `{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::locked/*"}`
	list := `{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::locked"}`
	lock := `{"Effect":"Allow","Action":["s3:GetObjectRetention","s3:GetObjectLegalHold"],"Resource":"arn:aws:s3:::locked/*"}`
	bind(t, e, "READER", read)
	bind(t, e, "LISTER", read, list, lock)
	reader, lister := clientsAs(e, "READER"), clientsAs(e, "LISTER")

	missing := &s3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("none")}
	if _, err := reader.s3.HeadObject(ctx, missing); status(err) != http.StatusForbidden {
		t.Errorf("missing key without s3:ListBucket: %v, want 403", err)
	}
	if _, err := lister.s3.HeadObject(ctx, missing); status(err) != http.StatusNotFound {
		t.Errorf("missing key with s3:ListBucket: %v, want 404", err)
	}
	present := &s3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("k")}
	out, err := reader.s3.HeadObject(ctx, present)
	if err != nil || out.ObjectLockMode != "" || out.ObjectLockRetainUntilDate != nil || out.ObjectLockLegalHoldStatus != "" {
		t.Errorf("lock headers shown without permission: %+v %v", out, err)
	}
	out, err = lister.s3.HeadObject(ctx, present)
	if err != nil || out.ObjectLockMode != types.ObjectLockModeGovernance || out.ObjectLockRetainUntilDate == nil ||
		out.ObjectLockLegalHoldStatus != types.ObjectLockLegalHoldStatusOn {
		t.Errorf("lock headers missing with permission: %+v %v", out, err)
	}
	if _, err := reader.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("new")}); code(err) != "AccessDenied" {
		t.Errorf("PutObject without s3:PutObject: %v, want AccessDenied", err)
	}
}

// UpdateObjectEncryption, Permissions (seeds 000 and 001): s3:PutObject,
// s3:UpdateObjectEncryption, and kms:Encrypt, kms:Decrypt,
// kms:GenerateDataKey and kms:ReEncrypt* on the target key; kms:Decrypt on
// an SSE-KMS source's key. S3 calls KMS with kms:ViaService set.
func TestIAMUpdateObjectEncryptionPermissions(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	target, source := e.Key(t), e.Key(t)
	e.Versioned(t, "data")
	full := map[string]string{
		"s3":     `{"Effect":"Allow","Action":["s3:PutObject","s3:UpdateObjectEncryption"],"Resource":"arn:aws:s3:::data/*"}`,
		"target": fmt.Sprintf(`{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey","kms:ReEncrypt*"],"Resource":%q}`, target),
		"source": fmt.Sprintf(`{"Effect":"Allow","Action":"kms:Decrypt","Resource":%q,
			"Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}`, source),
	}
	cases := []struct {
		name      string
		drop      string // a statement left out
		narrow    string // or an action left out of the target statement
		wantError bool
	}{
		{name: "everything granted"},
		{name: "no s3 statement", drop: "s3", wantError: true},
		{name: "no source-key decrypt", drop: "source", wantError: true},
		{name: "target without kms:Encrypt", narrow: "kms:Encrypt", wantError: true},
		{name: "target without kms:GenerateDataKey", narrow: "kms:GenerateDataKey", wantError: true},
		{name: "target without kms:ReEncrypt*", narrow: "kms:ReEncrypt*", wantError: true},
		{name: "target without kms:Decrypt", narrow: `"kms:Decrypt",`, wantError: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("obj-%d", i)
			e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
				SSEKMSKeyId: aws.String(source)}, "x")
			var stmts []string
			for name, st := range full {
				if name == tc.drop {
					continue
				}
				if name == "target" && tc.narrow != "" {
					st = strings.Replace(strings.Replace(st, `"`+tc.narrow+`",`, "", 1), `,"`+tc.narrow+`"`, "", 1)
					st = strings.Replace(st, tc.narrow, "", 1)
				}
				stmts = append(stmts, st)
			}
			access := fmt.Sprintf("FN%d", i)
			bind(t, e, access, stmts...)
			_, err := clientsAs(e, access).s3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("data"), Key: aws.String(key),
				ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(target)}}})
			st, _ := e.Emu.Inspect("data", key, "")
			if tc.wantError {
				if code(err) != "AccessDenied" || st.KMSKeyARN != source {
					t.Errorf("got %v, object on %s; want AccessDenied and the object untouched", err, st.KMSKeyARN)
				}
				return
			}
			if err != nil || st.KMSKeyARN != target {
				t.Errorf("got %v, object on %s; want it updated", err, st.KMSKeyARN)
			}
		})
	}
	// The ViaService condition: the same key may not be used directly.
	bind(t, e, "VIA", full["source"])
	if _, err := clientsAs(e, "VIA").kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(source)}); code(err) != "AccessDeniedException" {
		t.Errorf("direct KMS call under a kms:ViaService=s3 grant: %v, want AccessDeniedException", err)
	}
}

func TestIAMSQSAndKMSAndExpiredSessions(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	url, arn := e.Queue(t, "work", nil)
	other, _ := e.Queue(t, "other", nil)
	bind(t, e, "SENDER", fmt.Sprintf(`{"Effect":"Allow","Action":"sqs:SendMessage","Resource":%q}`, arn))
	c := clientsAs(e, "SENDER")
	if _, err := c.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("x")}}}); err != nil {
		t.Errorf("SendMessageBatch is authorized as sqs:SendMessage: %v", err)
	}
	if _, err := c.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(other), MessageBody: aws.String("x")}); code(err) != "AccessDeniedException" {
		t.Errorf("send to another queue: %v, want AccessDeniedException", err)
	}
	if _, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); code(err) != "AccessDeniedException" {
		t.Errorf("receive without sqs:ReceiveMessage: %v", err)
	}
	if _, err := c.kms.ListKeys(ctx, &kms.ListKeysInput{}); code(err) != "AccessDeniedException" {
		t.Errorf("KMS without a KMS grant: %v", err)
	}

	e.Emu.ExpireCredentials("SENDER", "*", -1)
	if _, err := c.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}); code(err) != "ExpiredTokenException" {
		t.Errorf("SQS with an expired session: %v", err)
	}
	e.Bucket(t, "bkt", false)
	if _, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); status(err) != http.StatusBadRequest {
		t.Errorf("HEAD with an expired session: %v, want a bare 400", err)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); code(err) != "ExpiredToken" {
		t.Errorf("PUT with an expired session: %v, want ExpiredToken", err)
	}
	e.Emu.RenewCredentials("SENDER")
	if _, err := c.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}); err != nil {
		t.Errorf("after the session is valid again: %v", err)
	}
	// The default identity is bound to nothing: full access.
	if _, err := e.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); err != nil {
		t.Errorf("unbound identity: %v", err)
	}
}

// An SSE-KMS upload needs kms:GenerateDataKey on the key and a download
// kms:Decrypt, used by S3 on the caller's behalf (S3 User Guide,
// UsingKMSEncryption.md, "Permissions"); SSE-S3 objects need neither.
func TestIAMSSEKMSObjectsNeedTheKey(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	e.Bucket(t, "kms-bucket", false)
	keyARN := e.Key(t)
	allowS3 := `{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::kms-bucket/*"}`
	via := `"Condition":{"StringEquals":{"kms:ViaService":"s3.` + e.Emu.Region() + `.amazonaws.com"}}`
	ctx := context.Background()
	put := func(c iamClients, key string, sse bool) error {
		in := &s3.PutObjectInput{Bucket: aws.String("kms-bucket"), Key: aws.String(key), Body: strings.NewReader("x")}
		if sse {
			in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(keyARN), aws.Bool(true)
		}
		_, err := c.s3.PutObject(ctx, in)
		return err
	}
	get := func(c iamClients, key string) error {
		out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("kms-bucket"), Key: aws.String(key)})
		if err == nil {
			out.Body.Close()
		}
		return err
	}

	bind(t, e, "AKIANOKEY", allowS3)
	none := clientsAs(e, "AKIANOKEY")
	if err := put(none, "plain", false); err != nil {
		t.Fatalf("SSE-S3 upload without KMS permissions: %v", err)
	}
	if err := put(none, "sealed", true); code(err) != "AccessDenied" {
		t.Fatalf("SSE-KMS upload without kms:GenerateDataKey: %v, want AccessDenied", err)
	}
	bind(t, e, "AKIAWRITER", allowS3, `{"Effect":"Allow","Action":"kms:GenerateDataKey","Resource":"`+keyARN+`",`+via+`}`)
	writer := clientsAs(e, "AKIAWRITER")
	if err := put(writer, "sealed", true); err != nil {
		t.Fatalf("SSE-KMS upload with kms:GenerateDataKey through S3: %v", err)
	}
	if err := get(writer, "sealed"); code(err) != "AccessDenied" {
		t.Fatalf("SSE-KMS download without kms:Decrypt: %v, want AccessDenied", err)
	}
	if err := get(none, "plain"); err != nil {
		t.Fatalf("SSE-S3 download without KMS permissions: %v", err)
	}
	bind(t, e, "AKIAREADER", allowS3, `{"Effect":"Allow","Action":"kms:Decrypt","Resource":"`+keyARN+`",`+via+`}`)
	if err := get(clientsAs(e, "AKIAREADER"), "sealed"); err != nil {
		t.Fatalf("SSE-KMS download with kms:Decrypt through S3: %v", err)
	}
}
