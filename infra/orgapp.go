package main

import (
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Organization stack ids.
const (
	OrganizationStackName = "S3RekeyOrganization"
	codeBucketStackPrefix = "S3RekeyCode-"
)

// PublishDir is where the synth leaves what the central account copies
// into every region's code bucket (docs/operations.md): org-assets in the
// cloud assembly's directory, cdk.out/org-assets by default.
func PublishDir(app awscdk.App) string {
	return filepath.Join(*app.Outdir(), "org-assets")
}

// organizationApp adds the organization's stacks to the app: the member
// stack (for review, and for a pilot account to deploy directly), a code
// bucket stack per region, and the organization stack, whose StackSet
// deploys the published member template.
func organizationApp(app awscdk.App, props S3RekeyStackProps) error {
	org := props.Config.Organization
	publishDir := PublishDir(app)
	if err := os.RemoveAll(publishDir); err != nil {
		return err
	}
	props.Member = &MemberProps{Organization: org, PublishDir: publishDir}
	published, err := publishMember(props)
	if err != nil {
		return err
	}
	memberProps := props
	memberProps.StackProps = awscdk.StackProps{Synthesizer: memberSynthesizer(), Description: jsii.String(memberDescription)}
	NewS3RekeyStack(app, MemberStackName, &memberProps)
	for _, region := range codeRegions(org) {
		NewS3RekeyCodeBucketStack(app, codeBucketStackPrefix+region, org, region)
	}
	NewS3RekeyOrganizationStack(app, OrganizationStackName, &S3RekeyOrganizationStackProps{
		StackProps: awscdk.StackProps{
			Env:         &awscdk.Environment{Account: jsii.String(org.CentralAccount), Region: jsii.String(org.CentralRegion)},
			Description: jsii.String("s3rekey organization: member stacks by StackSet, and the central report bucket"),
		},
		Config: props.Config, Member: published,
	})
	return nil
}
