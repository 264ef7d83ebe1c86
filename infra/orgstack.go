package main

import (
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudformation"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// S3RekeyOrganizationStackProps configure the organization stack.
type S3RekeyOrganizationStackProps struct {
	awscdk.StackProps
	Config *Config
	// Member is the published member template and code.
	Member *PublishedMember
}

// S3RekeyOrganizationStack is the central account's: the StackSet that
// deploys the member stack to every account of the target OUs and
// regions (and to accounts added to them later), and the central report
// bucket every member writes its completion reports into.
type S3RekeyOrganizationStack struct {
	awscdk.Stack
	StackSet     awscloudformation.CfnStackSet
	ReportBucket awss3.Bucket
	ReportKey    awskms.Key
}

// NewS3RekeyOrganizationStack builds the organization stack.
func NewS3RekeyOrganizationStack(scope constructs.Construct, id string, props *S3RekeyOrganizationStackProps) *S3RekeyOrganizationStack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	o := &S3RekeyOrganizationStack{Stack: stack}
	org := props.Config.Organization
	o.ReportKey, o.ReportBucket = o.centralReports(props.Config)
	o.StackSet = o.stackSet(org, props.Member)
	awscdk.NewCfnOutput(stack, jsii.String("ReportBucketName"), &awscdk.CfnOutputProps{Value: o.ReportBucket.BucketName()})
	awscdk.NewCfnOutput(stack, jsii.String("ReportKeyArn"), &awscdk.CfnOutputProps{Value: o.ReportKey.KeyArn()})
	awscdk.NewCfnOutput(stack, jsii.String("StackSetId"), &awscdk.CfnOutputProps{Value: o.StackSet.AttrStackSetId()})
	return o
}

// stackSet deploys the member template with service-managed permissions
// (StackSets creates the roles it deploys with in each account), to the
// target OUs in the target regions, automatically to accounts added to
// them later. Parameters are the StackSet's own, never overridden per
// target: an account added later gets the StackSet's values only
// (docs/AWSCloudFormation/latest/UserGuide/stacksets-orgs-manage-auto-deployment.md,
// Considerations), which is why per-account settings travel in the
// policy layer, chosen by the account at run time.
func (o *S3RekeyOrganizationStack) stackSet(org *OrganizationConfig, m *PublishedMember) awscloudformation.CfnStackSet {
	params := []*awscloudformation.CfnStackSet_ParameterProperty{{
		ParameterKey: jsii.String(ParamReportKeyArn), ParameterValue: o.ReportKey.KeyArn(),
	}}
	names := make([]string, 0, len(m.CodeKeys))
	for name := range m.CodeKeys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		params = append(params, &awscloudformation.CfnStackSet_ParameterProperty{
			ParameterKey: jsii.String(codeParamName(name)), ParameterValue: jsii.String(m.CodeKeys[name])})
	}
	// The template is read from the central region's code bucket, where it
	// is published with the code (a template body is limited to 51,200
	// bytes; a template URL to 1 MB).
	templateURL := awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://" + codeBucketName(org, org.CentralRegion) + ".s3."),
		jsii.String(org.CentralRegion), jsii.String("."), awscdk.Aws_URL_SUFFIX(), jsii.String("/" + m.TemplateKey)})
	return awscloudformation.NewCfnStackSet(o.Stack, jsii.String("Members"), &awscloudformation.CfnStackSetProps{
		StackSetName:    awscdk.Fn_Join(jsii.String("-"), &[]*string{awscdk.Aws_STACK_NAME(), jsii.String("members")}),
		Description:     jsii.String("s3rekey member stacks: every account of the target OUs, in every target region"),
		PermissionModel: jsii.String("SERVICE_MANAGED"),
		AutoDeployment: &awscloudformation.CfnStackSet_AutoDeploymentProperty{
			Enabled:                      jsii.Bool(true),
			RetainStacksOnAccountRemoval: org.RetainStacksOnAccountRemoval,
		},
		CallAs: jsii.String(org.CallAs),
		// Managed execution runs the automatic deployments of several
		// accounts at once (the same page recommends it with them).
		ManagedExecution: map[string]any{"Active": true},
		// The member creates IAM roles, one of them named (the reader).
		Capabilities: jsii.Strings("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"),
		OperationPreferences: &awscloudformation.CfnStackSet_OperationPreferencesProperty{
			FailureTolerancePercentage: jsii.Number(float64(*org.FailureTolerancePercentage)),
			MaxConcurrentPercentage:    jsii.Number(float64(org.MaxConcurrentPercentage)),
			RegionConcurrencyType:      jsii.String("SEQUENTIAL"),
			RegionOrder:                jsii.Strings(org.Targets.Regions...),
		},
		Parameters: &params,
		StackInstancesGroup: &[]*awscloudformation.CfnStackSet_StackInstancesProperty{{
			DeploymentTargets: &awscloudformation.CfnStackSet_DeploymentTargetsProperty{
				OrganizationalUnitIds: jsii.Strings(org.Targets.OrganizationalUnitIDs...),
			},
			Regions: jsii.Strings(org.Targets.Regions...),
		}},
		TemplateUrl: templateURL,
	})
}

// centralReports is the central report bucket and its key. Members write
// their reports through S3 under reports/ACCOUNT/ only, and read back
// (HeadObject, for a duplicate delivery's check) only there: the
// bucket policy binds the prefix to the caller's account with the policy
// variable ${aws:PrincipalAccount}, which IAM allows in the resource part
// of an ARN (docs/IAM/latest/UserGuide/reference_policies_variables.md,
// "Resource element"). Only principals of the organization are allowed
// (aws:PrincipalOrgID); every write must be under the central key; the
// bucket is TLS only, private, versioned, kept when the stack goes.
func (o *S3RekeyOrganizationStack) centralReports(cfg *Config) (awskms.Key, awss3.Bucket) {
	org := cfg.Organization
	key := newKey(o.Stack, "ReportKey", "s3rekey central completion reports", "s3", nil)
	bucketArn := bucketARN(org.ReportBucketName)
	// S3 asks KMS for data keys under the encryption context of the bucket
	// (with a bucket key) or of the object (without), on the writer's
	// behalf (docs/AmazonS3/latest/userguide/UsingKMSEncryption.md,
	// "Encryption context"); members may only encrypt.
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("MembersEncryptReportsThroughS3"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:GenerateDataKey", "kms:Encrypt"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:ViaService": viaService("s3"), "aws:PrincipalOrgID": org.OrganizationID},
			"StringLike":   map[string]any{"kms:EncryptionContext:aws:s3:arn": []string{bucketArn, bucketArn + "/" + reportsRoot + "/*"}},
		},
	}), jsii.Bool(false))
	bucket := awss3.NewBucket(o.Stack, jsii.String("ReportBucket"), &awss3.BucketProps{
		// Members name it in their template: the one fixed name here.
		BucketName:        jsii.String(org.ReportBucketName),
		Encryption:        awss3.BucketEncryption_KMS,
		EncryptionKey:     key,
		BucketKeyEnabled:  jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		Versioned:         jsii.Bool(true),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(float64(cfg.Jobs.RetentionDays))),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
			ExpiredObjectDeleteMarker:           jsii.Bool(true),
		}},
	})
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("MembersWriteOwnReports"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("s3:PutObject", "s3:GetObject"),
		Resources:  jsii.Strings(bucketArn + "/" + reportsRoot + "/${aws:PrincipalAccount}/*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": org.OrganizationID}},
	}))
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyUnderTheCentralKey"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  jsii.Strings(bucketArn + "/*"),
		Conditions: &map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption-aws-kms-key-id": key.KeyArn()}},
	}))
	return key, bucket
}

// codeBucketName is the code bucket of a region.
func codeBucketName(org *OrganizationConfig, region string) string {
	return org.CodeBucketPrefix + "-" + region
}

// codeRegions are the regions with a code bucket: the targets', and the
// central region (the member template is read from there).
func codeRegions(org *OrganizationConfig) []string {
	regions := append([]string(nil), org.Targets.Regions...)
	if !contains(regions, org.CentralRegion) {
		regions = append(regions, org.CentralRegion)
	}
	return regions
}

// NewS3RekeyCodeBucketStack is the central account's code bucket of one
// region: Lambda reads a function's code from a bucket of the function's
// region, so every target region has one. Any principal of the
// organization may read s3rekey's objects (CloudFormation in a member
// account creates the functions with its StackSets execution role);
// nobody outside it; only the central account writes.
func NewS3RekeyCodeBucketStack(scope constructs.Construct, id string, org *OrganizationConfig, region string) awscdk.Stack {
	stack := awscdk.NewStack(scope, &id, &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(org.CentralAccount), Region: jsii.String(region)},
		Description: jsii.String("s3rekey code for the organization's member stacks in " + region),
	})
	bucket := awss3.NewBucket(stack, jsii.String("CodeBucket"), &awss3.BucketProps{
		// The member template names it by prefix and region.
		BucketName:        jsii.String(codeBucketName(org, region)),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules:    &[]*awss3.LifecycleRule{{NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(90))}},
	})
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OrganizationReadsCode"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("s3:GetObject", "s3:GetObjectVersion"),
		Resources:  jsii.Strings(*bucket.BucketArn() + "/" + publishedPrefix + "*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": org.OrganizationID}},
	}))
	awscdk.NewCfnOutput(stack, jsii.String("CodeBucketName"), &awscdk.CfnOutputProps{Value: bucket.BucketName()})
	return stack
}
