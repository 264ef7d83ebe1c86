package estate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func TestEstateDescribesEveryBucket(t *testing.T) {
	env := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	key := env.Key(t)
	for _, b := range []string{"data-a", "data-replica", "data-tfstate", "misc", "inventory"} {
		env.Bucket(t, b, false)
	}
	env.Versioned(t, "data-a")
	for i := range 5 {
		env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data-a"), Key: aws.String(fmt.Sprintf("k%d", i))}, "12345")
	}
	if _, err := env.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "data-a", DestinationBucket: "inventory", Prefix: "s3rekey", Format: "CSV", CurrentOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.S3.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String("data-a"), ReplicationConfiguration: &types.ReplicationConfiguration{
		Role: aws.String("arn:aws:iam::111122223333:role/replication"), Rules: []types.ReplicationRule{
			{Status: types.ReplicationRuleStatusEnabled, Destination: &types.Destination{Bucket: aws.String("arn:aws:s3:::data-replica")}},
			{Status: types.ReplicationRuleStatusEnabled, Destination: &types.Destination{Bucket: aws.String("arn:aws:s3:::elsewhere")}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("misc"), ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: "aws:kms", KMSMasterKeyID: aws.String(key)},
			BucketKeyEnabled: aws.Bool(true), BlockedEncryptionTypes: &types.BlockedEncryptionTypes{EncryptionType: []types.EncryptionType{"SSE-C"}}}}}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"maxKmsRequestsPerSecond":100,"exclude":[{"names":["*-tfstate","inventory"]}],
		"rules":[{"name":"data","select":{"names":["data-*"]},"settings":{"kmsKeyArn":%q,"maxObjectsPerSecond":2}},
		         {"name":"unused","select":{"names":["nothing-*"]},"settings":{"kmsKeyArn":%q}}]}`, key, key)))
	if err != nil {
		t.Fatal(err)
	}
	d := &estate.Describer{S3: env.S3, Policy: pol, InventoryBucket: "inventory", Region: env.Emu.Region()}
	rep, err := d.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]estate.Bucket{}
	for _, b := range rep.Buckets {
		by[b.Name] = b
		if len(b.Problems) > 0 {
			t.Errorf("%s: problems %v", b.Name, b.Problems)
		}
	}
	a := by["data-a"]
	if !a.Managed || a.GovernedBy != "rules[0] data" || a.TargetKey != key || a.Objects != 5 || a.Bytes != 25 || a.WouldUpdate != 5 ||
		a.Seconds != 2.5 || a.Cost <= 0 || !strings.HasSuffix(a.SizeFrom, "manifest.json") || a.EventBridge || a.DefaultEncryption != "SSE-S3" {
		t.Errorf("data-a %+v", a)
	}
	if len(a.Replication) != 2 || !a.Replication[0].Governed || a.Replication[0].Bucket != "data-replica" || a.Replication[1].Governed {
		t.Errorf("data-a's replication %+v, want data-replica governed and elsewhere not", a.Replication)
	}
	if m := by["misc"]; m.Managed || m.GovernedBy != "" || m.DefaultEncryption != "SSE-KMS "+key+" + bucket key (SSE-C blocked)" || m.Objects != -1 {
		t.Errorf("misc %+v", m)
	}
	if x := by["data-tfstate"]; x.Managed || x.GovernedBy != "exclude[0]" {
		t.Errorf("data-tfstate %+v", x)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Where != "rules[1] unused" {
		t.Errorf("findings %v", rep.Findings)
	}
	if rep.Managed != 2 || rep.Objects != 5 || len(rep.Buckets) != 5 {
		t.Errorf("totals %+v", rep)
	}
}
