package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
)

// keyAdministration are the actions of the key administrators statement
// of KMS's default key policy, none of them a cryptographic operation
// (docs/kms/latest/developerguide/key-policy-default.md, "Allows key
// administrators to administer the KMS key"). kms:* is never granted: an
// administrator cannot decrypt, and a user cannot administer.
var keyAdministration = []string{
	"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
	"kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
}

// keyUse are the cryptographic operations of a symmetric key's key users
// statement (the same page, "Allows key users to use the KMS key").
var keyUse = []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}

// Removal policies of the logs (logRemovalPolicy).
const (
	RemovalRetain  = "retain"
	RemovalDestroy = "destroy"
)

// stackKey creates a key of the stack (rotation on, kept when the stack
// goes) whose key policy separates administration from use: the account's
// IAM policies may grant administration, and may grant use only through
// the one service the key serves (kms:ViaService), from the account
// (kms:CallerAccount). No statement lets anyone call Decrypt on the key
// directly.
func (s *S3RekeyStack) stackKey(id, description, service string, alias *string) awskms.Key {
	return newKey(s.Stack, id, description, service, alias)
}

// newKey is stackKey in any stack (the organization stack's report key).
func newKey(stack awscdk.Stack, id, description, service string, alias *string) awskms.Key {
	account := awsiam.NewAccountRootPrincipal()
	policy := awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("KeyAdministration"),
			Principals: &[]awsiam.IPrincipal{account},
			Actions:    jsii.Strings(keyAdministration...),
			Resources:  jsii.Strings("*"),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("KeyUseThroughService"),
			Principals: &[]awsiam.IPrincipal{account},
			Actions:    jsii.Strings(keyUse...),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":    viaService(service),
				"kms:CallerAccount": awscdk.Aws_ACCOUNT_ID(),
			}},
		}),
	}})
	return awskms.NewKey(stack, jsii.String(id), &awskms.KeyProps{
		Description:       jsii.String(description),
		Alias:             alias,
		EnableKeyRotation: jsii.Bool(true),
		Policy:            policy,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
}

// viaService is a service's kms:ViaService value in the stack's region.
func viaService(service string) *string {
	return jsii.String(service + "." + *awscdk.Aws_REGION() + ".amazonaws.com")
}

// useThroughService lets principals use a key through a service without
// an IAM grant of their own (a key policy that names a principal is
// enough: docs/kms/latest/developerguide/key-policies.md).
func useThroughService(key awskms.Key, sid, service string, actions []string, principals ...awsiam.IPrincipal) {
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String(sid),
		Principals: &principals,
		Actions:    jsii.Strings(actions...),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaService(service)}},
	}), jsii.Bool(false))
}

// inventoryKey encrypts the inventory bucket the stack creates (every
// managed key and its encryption state). S3 Inventory delivers into an
// SSE-KMS bucket only when the key policy lets the S3 service principal
// generate data keys, from the account's buckets
// (docs/AmazonS3/latest/userguide/configure-inventory.md, "Granting Amazon
// S3 permission to use your customer managed key for encryption"); the
// bucket's default encryption names the key by ARN, as that page requires.
func (s *S3RekeyStack) newInventoryKey() awskms.Key {
	key := s.stackKey("InventoryKey", "s3rekey inventory reports", "s3", nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("S3InventoryDelivery"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("s3.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
			"ArnLike":      map[string]any{"aws:SourceArn": bucketARN("*")},
		},
	}), jsii.Bool(false))
	return key
}

// logsKey encrypts the functions' log groups (they hold object keys).
// CloudWatch Logs uses the key as its regional service principal, for the
// account's log groups only (kms:EncryptionContext:aws:logs:arn); callers
// of PutLogEvents and GetLogEvents on an encrypted group need the key
// through CloudWatch Logs too
// (docs/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.md, steps 2 and 3).
func (s *S3RekeyStack) logsKey() awskms.Key {
	key := s.stackKey("LogsKey", "s3rekey function logs", "logs", nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchLogs"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(viaService("logs"), nil)},
		Actions:    jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnLike": map[string]any{
			"kms:EncryptionContext:aws:logs:arn": "arn:" + *awscdk.Aws_PARTITION() + ":logs:" + *awscdk.Aws_REGION() + ":" + *awscdk.Aws_ACCOUNT_ID() + ":log-group:*",
		}},
	}), jsii.Bool(false))
	return key
}

// logGroup is a function's log group: under the logs key, kept for the
// configured retention, and kept or deleted with the stack as configured.
func (s *S3RekeyStack) logGroup(id string) awslogs.LogGroup {
	removal := awscdk.RemovalPolicy_RETAIN
	if s.config.LogRemovalPolicy == RemovalDestroy {
		removal = awscdk.RemovalPolicy_DESTROY
	}
	return awslogs.NewLogGroup(s.Stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     retention(s.config.LogRetentionDays),
		EncryptionKey: s.logs,
		RemovalPolicy: removal,
	})
}

// keyUsers names the functions in the stack's key policies for what they
// do with each key: every function writes its logs (through CloudWatch
// Logs), and the planner reads the inventory reports (through S3).
func (s *S3RekeyStack) keyUsers() {
	roles := []awsiam.IPrincipal{s.Encrypt.Role(), s.Planner.Role(), s.Enroll.Role()}
	useThroughService(s.logs, "FunctionsWriteLogs", "logs", []string{"kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"}, roles...)
	if s.inventoryKey != nil {
		useThroughService(s.inventoryKey, "PlannerReadsInventory", "s3", []string{"kms:Decrypt"}, s.Planner.Role())
	}
}
