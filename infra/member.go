package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// MemberProps make the stack an organization member's: the template a
// service-managed StackSet deploys to every target account and region.
type MemberProps struct {
	Organization *OrganizationConfig
	// PublishDir receives what the central account publishes to every
	// region's code bucket: the functions' and the policy's zips, named by
	// their content (publish.go).
	PublishDir string
}

// Member-template parameters: the StackSet passes the central report
// key's ARN (created by the organization stack), and the code objects'
// keys (their defaults are this synth's).
const (
	ParamReportKeyArn = "CentralReportKeyArn"
	paramCodeSuffix   = "CodeKey"
)

// member is a member stack's organization state.
type member struct {
	props      *MemberProps
	codeBucket awss3.IBucket
	reportKey  awscdk.CfnParameter
	// codeKeys are the published objects' keys, by code name.
	codeKeys map[string]string
}

// accountPoliciesDir is where the policy layer holds the per-account
// policies (policy.EnvAccountPolicies).
const accountPoliciesDir = "/opt/s3rekey/accounts"

// asMember sets a member stack up before anything is built: the code
// bucket of its region, the central key parameter, and the configuration
// with reports sent to the central bucket under the account's own prefix
// (reports/ACCOUNT/REGION), which is all the central bucket policy lets
// the account write. Without MemberProps the configuration is unchanged.
func (s *S3RekeyStack) asMember(props *S3RekeyStackProps) *Config {
	if props.Member == nil {
		return props.Config
	}
	org := props.Member.Organization
	s.member = &member{props: props.Member, codeKeys: map[string]string{}}
	s.member.codeBucket = awss3.Bucket_FromBucketName(s.Stack, jsii.String("CodeBucket"),
		awscdk.Fn_Join(jsii.String("-"), &[]*string{jsii.String(org.CodeBucketPrefix), awscdk.Aws_REGION()}))
	s.member.reportKey = awscdk.NewCfnParameter(s.Stack, jsii.String(ParamReportKeyArn), &awscdk.CfnParameterProps{
		Type:           jsii.String("String"),
		Description:    jsii.String("the central report key's ARN (the organization stack passes it)"),
		AllowedPattern: jsii.String(`arn:aws[a-z-]*:kms:[a-z0-9-]+:` + org.CentralAccount + `:key/[a-zA-Z0-9-]+`),
	})
	cfg := *props.Config
	cfg.Jobs.Reports = ReportsConfig{
		Bucket:        org.ReportBucketName,
		Prefix:        reportsRoot + "/" + *awscdk.Aws_ACCOUNT_ID() + "/" + *awscdk.Aws_REGION(),
		KMSKeyArn:     *s.member.reportKey.ValueAsString(),
		ExpectedOwner: org.CentralAccount,
		All:           props.Config.Jobs.Reports.All,
	}
	return &cfg
}

// reportsRoot is the central bucket's prefix of the members' reports:
// reports/ACCOUNT/… is the account's own.
const reportsRoot = "reports"

// memberJobs adds what a member's functions need to reach the central
// report bucket (its region) and their account's own policy.
func (s *S3RekeyStack) memberJobs(jr *jobResources) {
	if s.member == nil {
		return
	}
	jr.env[jobs.EnvReportRegion] = jsii.String(s.member.props.Organization.CentralRegion)
	if len(s.member.props.Organization.Accounts) > 0 {
		jr.env[policy.EnvAccountPolicies] = jsii.String(accountPoliciesDir)
	}
}

// memberResources adds, to what the roles are granted, the central report
// key through S3 of the central region, and the keys accounts override
// theirs with: by ARN while they are few (a key of another account in the
// list is of no use to this one's role: its key policy says no), any key
// of the account through S3 beyond; by alias through kms:ResourceAliases.
func (s *S3RekeyStack) memberResources(res *permissions.Resources) {
	if s.member == nil {
		return
	}
	org := s.member.props.Organization
	res.ReportRegion = org.CentralRegion
	arns, aliases := org.accountKeys()
	for _, a := range arns {
		if !contains(res.TargetKeyARNs, a) {
			res.TargetKeyARNs = append(res.TargetKeyARNs, a)
		}
	}
	if len(res.TargetKeyARNs) > permissions.MaxListed {
		res.TargetKeyARNs = []string{"arn:" + res.Partition + ":kms:" + res.Region + ":" + res.Account + ":key/*"}
	}
	for _, a := range aliases {
		if !contains(res.TargetKeyAliases, a) {
			res.TargetKeyAliases = append(res.TargetKeyAliases, a)
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// code is a function's or layer's code: a CDK asset for one account, the
// published zip in the region's code bucket for a member (StackSets
// deploy a template, not its assets).
func (s *S3RekeyStack) code(name, dir string) awslambda.Code {
	if s.member == nil {
		return awslambda.Code_FromAsset(jsii.String(dir), nil)
	}
	key, err := publishZip(s.member.props.PublishDir, name, dir)
	if err != nil {
		// As policyLayer: CDK reports a panic of construction as a synth
		// error naming it.
		panic("s3rekey: publish " + name + ": " + err.Error())
	}
	param := awscdk.NewCfnParameter(s.Stack, jsii.String(codeParamName(name)), &awscdk.CfnParameterProps{
		Type:        jsii.String("String"),
		Default:     jsii.String(key),
		Description: jsii.String("the " + name + " zip's key in the region's code bucket"),
	})
	s.member.codeKeys[name] = key
	// CDK warns that code from a bucket without an object version is not
	// updated when the object changes: a published object never changes,
	// new code is a new key.
	awscdk.Annotations_Of(s.Stack).AcknowledgeWarning(jsii.String("@aws-cdk/aws-lambda:codeFromBucketObjectVersionNotSpecified"),
		jsii.String("content-addressed keys: new code is a new object"))
	return awslambda.Code_FromBucket(s.member.codeBucket, param.ValueAsString(), nil)
}

// codeParamName is the template parameter of a code object's key.
func codeParamName(name string) string {
	return name + paramCodeSuffix
}

// writeAccountPolicies puts each overriding account's policy in the
// policy layer, as accounts/ACCOUNT.json beside policy.json.
func (s *S3RekeyStack) writeAccountPolicies(dir string, cfg *Config) error {
	if s.member == nil || len(s.member.props.Organization.Accounts) == 0 {
		return nil
	}
	policies, err := s.member.props.Organization.accountPolicies(cfg)
	if err != nil {
		return err
	}
	accounts := filepath.Join(dir, "s3rekey", "accounts")
	if err := os.MkdirAll(accounts, 0o755); err != nil {
		return err
	}
	for id, data := range policies {
		if err := os.WriteFile(filepath.Join(accounts, id+".json"), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// publishDeployment publishes the member's deployment record and creates
// the organization view's reader role. Both have fixed names (configured,
// defaults deployment.DefaultParameterName and
// deployment.DefaultReaderRoleName): they are the only fixed names of
// the member stack, because the view must find them in every account
// without knowing what CloudFormation generated there.
func (s *S3RekeyStack) publishDeployment(jr jobResources, res permissions.Resources) {
	if s.member == nil {
		return
	}
	org := s.member.props.Organization
	record := deployment.Record{
		Version: deployment.Version, Account: *awscdk.Aws_ACCOUNT_ID(), Region: *awscdk.Aws_REGION(),
		JobsTable: *jr.table.TableName(), WorkQueueURL: *s.WorkQueue.QueueUrl(), WorkDLQURL: *s.WorkDLQ.QueueUrl(),
		ControlQueueURL: *s.ControlQueue.QueueUrl(), ControlDLQURL: *s.ControlDLQ.QueueUrl(), ReportLocation: *jr.reportLocationOutput,
		UploadsQueueURL: *s.UploadsQueue.QueueUrl(), UploadsDLQURL: *s.UploadsDLQ.QueueUrl(),
	}
	value, _ := json.Marshal(record) // strings and an int always marshal
	param := awsssm.NewStringParameter(s.Stack, jsii.String("DeploymentRecord"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(org.ParameterName),
		StringValue:   jsii.String(string(value)),
		Description:   jsii.String("s3rekey: this deployment's resources, for the organization view"),
	})
	view := permissions.View{
		DeploymentParameterARN: *param.ParameterArn(),
		QueueARNs: []string{*s.WorkQueue.QueueArn(), *s.WorkDLQ.QueueArn(), *s.ControlQueue.QueueArn(), *s.ControlDLQ.QueueArn(),
			*s.UploadsQueue.QueueArn(), *s.UploadsDLQ.QueueArn(), *s.EnrollDLQ.QueueArn()},
	}
	if s.inventoryKey != nil {
		view.InventoryKeyARN = *s.inventoryKey.KeyArn()
	}
	// Assumable by the central account's view role only, and only while
	// that account is of the organization: the account principal with
	// aws:PrincipalArn names the role without IAM resolving it at deploy
	// (a role principal must exist when the trust policy is written).
	viewRole := "arn:" + *awscdk.Aws_PARTITION() + ":iam::" + org.CentralAccount + ":role/" + org.ViewRoleName
	reader := awsiam.NewRole(s.Stack, jsii.String("OrganizationReader"), &awsiam.RoleProps{
		// One per region: see deployment.ReaderRoleName.
		RoleName:    jsii.String(deployment.ReaderRoleName(org.ReaderRoleName, *awscdk.Aws_REGION())),
		Description: jsii.String("s3rekey: the organization view reads this deployment (read-only)"),
		AssumedBy: awsiam.NewAccountPrincipal(jsii.String(org.CentralAccount)).WithConditions(&map[string]any{
			"ArnEquals":    map[string]any{"aws:PrincipalArn": viewRole},
			"StringEquals": map[string]any{"aws:PrincipalOrgID": org.OrganizationID},
		}),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	for _, st := range permissions.Reader(res, view) {
		reader.AddToPolicy(statement(st))
	}
	awscdk.NewCfnOutput(s.Stack, jsii.String("DeploymentParameterName"), &awscdk.CfnOutputProps{Value: param.ParameterName()})
	awscdk.NewCfnOutput(s.Stack, jsii.String("OrganizationReaderRoleArn"), &awscdk.CfnOutputProps{Value: reader.RoleArn()})
}
