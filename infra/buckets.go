package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/permissions"
)

// inventoryBucket is the inventory destination: the configured bucket, or
// one the stack creates (private, TLS only, SSE-KMS under the inventory
// key with a bucket key, reports expire after 30 days) with the policy that lets S3 Inventory deliver from the account's
// buckets (whichever the enroll function configures: one statement, not
// one per bucket).
func (s *S3RekeyStack) inventoryBucket() awss3.IBucket {
	cfg := s.config
	if cfg.InventoryBucket != "" {
		b := awss3.Bucket_FromBucketName(s.Stack, jsii.String("InventoryBucket"), jsii.String(cfg.InventoryBucket))
		b.EnableEventBridgeNotification()
		return b
	}
	s.inventoryKey = s.newInventoryKey()
	b := awss3.NewBucket(s.Stack, jsii.String("InventoryBucket"), &awss3.BucketProps{
		Encryption:         awss3.BucketEncryption_KMS,
		EncryptionKey:      s.inventoryKey,
		BucketKeyEnabled:   jsii.Bool(true),
		BlockPublicAccess:  awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:         jsii.Bool(true),
		EventBridgeEnabled: jsii.Bool(true),
		ObjectOwnership:    awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules:     &[]*awss3.LifecycleRule{{Expiration: awscdk.Duration_Days(jsii.Number(30))}},
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
	})
	b.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("S3InventoryDelivery"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("s3.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  jsii.Strings(*b.ArnForObjects(jsii.String("*"))),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
			"ArnLike":      map[string]any{"aws:SourceArn": []*string{jsii.String(bucketARN("*"))}},
		},
	}))
	return b
}

// eventRules routes S3 events: one rule for every new object of the
// account's buckets (only buckets whose EventBridge notifications the
// enroll function turned on send them, and the encrypt function skips a
// bucket its policy does not select), and one for finished inventory
// reports. s3rekey's own buckets are left out of the first.
func (s *S3RekeyStack) eventRules(inventory awss3.IBucket, reportBucket *string) {
	awsevents.NewRule(s.Stack, jsii.String("ObjectCreated"), &awsevents.RuleProps{
		Description: jsii.String("s3rekey: new objects in the account's enrolled buckets"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.s3"),
			DetailType: jsii.Strings("Object Created"),
			Detail: &map[string]any{"bucket": map[string]any{"name": []any{
				map[string]any{"anything-but": []*string{inventory.BucketName(), reportBucket}}}}},
		},
		// Uploads have their own queue: they never wait behind a backfill.
		Targets: &[]awsevents.IRuleTarget{s.ruleTarget(s.UploadsQueue, s.UploadsDLQ)},
	})
	awsevents.NewRule(s.Stack, jsii.String("InventoryManifest"), &awsevents.RuleProps{
		Description: jsii.String("s3rekey: a finished S3 Inventory report starts a backfill"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.s3"),
			DetailType: jsii.Strings("Object Created"),
			Detail: &map[string]any{
				"bucket": map[string]any{"name": []*string{inventory.BucketName()}},
				"object": map[string]any{"key": []any{map[string]string{"suffix": "manifest.checksum"}}},
			},
		},
		Targets: &[]awsevents.IRuleTarget{s.ruleTarget(s.ControlQueue, s.ControlDLQ)},
	})
}

func bucketARN(name string) string { return "arn:" + *awscdk.Aws_PARTITION() + ":s3:::" + name }

// grant renders the statements of internal/permissions, the one source of
// the functions' permissions that the tests bind in the emulator too, into
// a function's role.
func grant(fn awslambda.Function, stmts []permissions.Statement) {
	for _, st := range stmts {
		fn.AddToRolePolicy(statement(st))
	}
}

// statement renders one statement of internal/permissions.
func statement(st permissions.Statement) awsiam.PolicyStatement {
	props := &awsiam.PolicyStatementProps{Sid: jsii.String(st.Sid), Actions: jsii.Strings(st.Actions...), Resources: jsii.Strings(st.Resources...)}
	if st.Effect == permissions.EffectDeny {
		props.Effect = awsiam.Effect_DENY
	}
	if len(st.Condition) > 0 {
		conds := map[string]any{}
		for op, kv := range st.Condition {
			conds[op] = kv
		}
		props.Conditions = &conds
	}
	return awsiam.NewPolicyStatement(props)
}
