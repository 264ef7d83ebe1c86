package enroll_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

type fixture struct {
	*emutest.Env
	key string
	e   *enroll.Enroller
}

func newFixture(t *testing.T, policyJSON func(key string) string) *fixture {
	t.Helper()
	env := emutest.Start(t, emulator.Options{})
	f := &fixture{Env: env, key: env.Key(t)}
	pol, err := policy.Parse([]byte(policyJSON(f.key)))
	if err != nil {
		t.Fatal(err)
	}
	f.e = &enroll.Enroller{S3: env.S3, Keys: policy.Static(pol), InventoryBucketARN: "arn:aws:s3:::inventory",
		AccountID: env.Emu.Account(), Region: env.Emu.Region()}
	return f
}

func (f *fixture) tag(t *testing.T, bucket string, kv ...string) {
	t.Helper()
	var tags []types.Tag
	for i := 0; i < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	if _, err := f.S3.PutBucketTagging(context.Background(), &s3.PutBucketTaggingInput{Bucket: aws.String(bucket), Tagging: &types.Tagging{TagSet: tags}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) eventBridgeOn(t *testing.T, bucket string) bool {
	t.Helper()
	out, err := f.S3.GetBucketNotificationConfiguration(context.Background(), &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return out.EventBridgeConfiguration != nil
}

const rules = `{"exclude":[{"names":["*-tfstate"]},{"tags":{"s3rekey":"off"}}],
 "rules":[{"name":"confidential","select":{"tags":{"data-classification":"confidential"}},
           "settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"setDefaultEncryption":true,"inventory":{"format":"CSV","frequency":"Weekly"},"versions":"all"}},
          {"name":"data","select":{"names":["data-*"]},"settings":{"kmsKeyArn":%q,"setDefaultEncryption":true}},
          {"name":"unused","select":{"names":["nothing-*"]},"settings":{"kmsKeyArn":%q}}]}`

func TestSweepEnrollsWhatTheRulesSelect(t *testing.T) {
	f := newFixture(t, func(k string) string { return fmt.Sprintf(rules, k, k, k) })
	ctx := context.Background()
	for _, b := range []string{"data-a", "hr-files", "data-tfstate", "data-off", "misc"} {
		f.Bucket(t, b, false)
	}
	f.tag(t, "hr-files", "data-classification", "confidential")
	f.tag(t, "data-off", "s3rekey", "off")
	sum, err := f.e.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Buckets != 5 || sum.Managed != 2 || sum.Changed != 2 {
		t.Errorf("sweep %+v, want 5 buckets, 2 managed and changed", sum)
	}
	if len(sum.Findings) != 1 || sum.Findings[0].Where != "rules[2] unused" {
		t.Errorf("findings %v, want the rule that governs nothing", sum.Findings)
	}
	for b, want := range map[string]bool{"data-a": true, "hr-files": true, "data-tfstate": false, "data-off": false, "misc": false} {
		if got := f.eventBridgeOn(t, b); got != want {
			t.Errorf("%s: EventBridge on %v, want %v (an excluded bucket is never touched)", b, got, want)
		}
	}
	inv, err := f.S3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{Bucket: aws.String("hr-files"), Id: aws.String(enroll.InventoryID)})
	if err != nil {
		t.Fatal(err)
	}
	c := inv.InventoryConfiguration
	if c.Schedule.Frequency != "Weekly" || c.IncludedObjectVersions != "All" || c.Destination.S3BucketDestination.Format != "CSV" ||
		aws.ToString(c.Destination.S3BucketDestination.Bucket) != "arn:aws:s3:::inventory" || len(c.OptionalFields) < 9 {
		t.Errorf("inventory %+v", c)
	}
	if _, err := f.S3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{Bucket: aws.String("data-a"), Id: aws.String(enroll.InventoryID)}); err == nil {
		t.Error("inventory configured where the rule does not ask for it")
	}
	// Enrolling again changes nothing: every step reads first.
	again, err := f.e.Sweep(ctx)
	if err != nil || again.Changed != 0 {
		t.Errorf("a second sweep changed %d buckets (%v)", again.Changed, err)
	}
}

// PutBucketEncryption replaces the whole configuration; enrollment keeps
// the bucket's blocked encryption types and, when the policy leaves
// bucketKeyEnabled unset, its bucket-key setting (API_PutBucketEncryption.md).
func TestDefaultEncryptionKeepsWhatItDoesNotMeanToChange(t *testing.T) {
	cases := []struct {
		name, bucketKey string // the policy's bucketKeyEnabled ("" unset)
		before          *types.ServerSideEncryptionRule
		wantBucketKey   bool
		wantBlocked     string
	}{
		{"blocked SSE-C kept", `,"bucketKeyEnabled":true`, &types.ServerSideEncryptionRule{
			BlockedEncryptionTypes: &types.BlockedEncryptionTypes{EncryptionType: []types.EncryptionType{"SSE-C"}}}, true, "[SSE-C]"},
		{"bucket key kept when unset", "", &types.ServerSideEncryptionRule{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: "aws:kms", KMSMasterKeyID: aws.String("arn:aws:kms:us-east-1:111122223333:key/old")},
			BucketKeyEnabled:                   aws.Bool(true)}, true, "[]"},
		{"bucket key set when configured", `,"bucketKeyEnabled":false`, &types.ServerSideEncryptionRule{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: "AES256"}, BucketKeyEnabled: aws.Bool(true),
			BlockedEncryptionTypes: &types.BlockedEncryptionTypes{EncryptionType: []types.EncryptionType{"NONE"}}}, false, "[NONE]"},
		{"no configuration before", "", nil, false, "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(k string) string {
				return fmt.Sprintf(`{"buckets":{"enc":{"kmsKeyArn":%q,"setDefaultEncryption":true%s}}}`, k, tc.bucketKey)
			})
			ctx := context.Background()
			f.Bucket(t, "enc", false)
			if tc.before != nil {
				if _, err := f.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("enc"),
					ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{*tc.before}}}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := f.e.Bucket(ctx, "enc")
			if err != nil || !res.Managed {
				t.Fatalf("enroll %+v %v", res, err)
			}
			out, err := f.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("enc")})
			if err != nil {
				t.Fatal(err)
			}
			r := out.ServerSideEncryptionConfiguration.Rules[0]
			var blocked []types.EncryptionType
			if r.BlockedEncryptionTypes != nil {
				blocked = r.BlockedEncryptionTypes.EncryptionType
			}
			if r.ApplyServerSideEncryptionByDefault.SSEAlgorithm != "aws:kms" || aws.ToString(r.ApplyServerSideEncryptionByDefault.KMSMasterKeyID) != f.key ||
				aws.ToBool(r.BucketKeyEnabled) != tc.wantBucketKey || fmt.Sprint(blocked) != tc.wantBlocked {
				t.Errorf("default encryption %+v key %v, bucket key %v, blocked %v; want bucket key %v, blocked %s",
					r.ApplyServerSideEncryptionByDefault.SSEAlgorithm, aws.ToString(r.ApplyServerSideEncryptionByDefault.KMSMasterKeyID),
					aws.ToBool(r.BucketKeyEnabled), blocked, tc.wantBucketKey, tc.wantBlocked)
			}
		})
	}
}

// Turning EventBridge on keeps the bucket's own notification targets.
func TestEventBridgeKeepsExistingNotifications(t *testing.T) {
	f := newFixture(t, func(k string) string { return fmt.Sprintf(`{"buckets":{"notif":{"kmsKeyArn":%q}}}`, k) })
	ctx := context.Background()
	f.Bucket(t, "notif", false)
	_, arn := f.Queue(t, "theirs", nil)
	if _, err := f.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("notif"),
		NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: []types.QueueConfiguration{{
			Id: aws.String("theirs"), QueueArn: aws.String(arn), Events: []types.Event{"s3:ObjectRemoved:*"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Bucket(ctx, "notif"); err != nil {
		t.Fatal(err)
	}
	out, err := f.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String("notif")})
	if err != nil || out.EventBridgeConfiguration == nil || len(out.QueueConfigurations) != 1 || aws.ToString(out.QueueConfigurations[0].Id) != "theirs" {
		t.Errorf("notifications after enrollment %+v %v", out, err)
	}
}

// The enroll function's statements, as the stack deploys them, are enough
// for a sweep, and every action in them is needed: without any one of them
// the sweep fails.
func TestEveryEnrollPermissionIsNeeded(t *testing.T) {
	env := emutest.Start(t, emulator.Options{})
	key := env.Key(t)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"rules":[{"name":"tagged","select":{"tags":{"enroll":"yes"}},
		"settings":{"kmsKeyArn":%q,"setDefaultEncryption":true,"inventory":{}}}]}`, key)))
	if err != nil {
		t.Fatal(err)
	}
	// A new bucket's backfill goes to the control queue.
	controlURL, controlARN := env.Queue(t, "control", nil)
	res := permissions.Resources{Partition: "aws", Region: env.Emu.Region(), Account: env.Emu.Account(), ControlQueueARN: controlARN}
	res.FromPolicy(pol)
	stmts := permissions.Enroll(res)
	sweep := func(t *testing.T, bucket string, stmts []permissions.Statement) error {
		t.Helper()
		const accessKey = "AKIAENROLLTEST000001"
		if err := env.Emu.BindPolicy(accessKey, permissions.PolicyDocument(stmts)); err != nil {
			t.Fatal(err)
		}
		cfg := env.Emu.AWSConfigAs(accessKey)
		cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
		env.Bucket(t, bucket, false)
		f := &fixture{Env: env}
		f.tag(t, bucket, "enroll", "yes")
		e := &enroll.Enroller{S3: s3.NewFromConfig(cfg, emulator.PathStyle), Keys: policy.Static(pol), InventoryBucketARN: "arn:aws:s3:::inventory",
			AccountID: env.Emu.Account(), Region: env.Emu.Region(), ControlQueueURL: controlURL, Backfills: &queue.Sender{API: sqs.NewFromConfig(cfg)}}
		_, err := e.Sweep(context.Background())
		// Each case enrolls its own bucket; the others are already done.
		return err
	}
	if err := sweep(t, "all-granted", stmts); err != nil {
		t.Fatalf("the deployed statements do not suffice: %v", err)
	}
	n := 0
	for _, st := range stmts {
		for _, action := range st.Actions {
			n++
			t.Run(action, func(t *testing.T) {
				bucket := fmt.Sprintf("without-%d", n)
				if err := sweep(t, bucket, permissions.Without(stmts, st.Sid, action)); err == nil {
					t.Errorf("a sweep without %s succeeded: the action is not needed", action)
				}
			})
		}
	}
	if n < 8 {
		t.Fatalf("only %d actions", n)
	}
}
