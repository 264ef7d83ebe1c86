package demo

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// enroll does in a member account what the member stack's automatic
// deployment does when the account joins the OU — queues, the jobs
// table, the reader role, the functions' roles under their deployed
// statements, the deployment record — with the account's own keys and a
// bucket of objects under the old one, then publishes the bucket's
// inventory and returns the account's pipeline, reporting into the
// central bucket under reports/ACCOUNT/REGION with the central key.
func (d *orgDemo) enroll(ctx context.Context, account string) (*orgMember, error) {
	cfg := d.rootConfig(account)
	emu := d.org.Account(account)
	region := emu.Region()
	kmsc := kms.NewFromConfig(cfg)
	old, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("the key objects were written under")})
	if err != nil {
		return nil, err
	}
	target, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("the account's target key")})
	if err != nil {
		return nil, err
	}
	m := &orgMember{account: account, bucket: "photos-" + account, target: aws.ToString(target.KeyMetadata.Arn)}
	inventory := "s3rekey-inventory-" + account
	s3c := s3.NewFromConfig(cfg, emulator.PathStyle)
	for _, b := range []string{m.bucket, inventory} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return nil, err
		}
	}
	q, err := createDeploymentQueues(ctx, sqs.NewFromConfig(cfg), region, account, false)
	if err != nil {
		return nil, err
	}
	// A new inventory's manifest reaches the planner through EventBridge.
	emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: inventory, KeySuffix: "manifest.checksum", Queue: ControlQueue})
	if _, err := s3c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(inventory),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		return nil, err
	}
	if err := CreateJobsTable(ctx, cfg, JobsTable); err != nil {
		return nil, err
	}
	m.jobs = jobs.Config{Table: JobsTable, ReportBucket: CentralReports, ReportPrefix: orgReportsRoot + "/" + account + "/" + region,
		ReportKMSKeyARN: d.centralKey, ReportOwner: OrgManagement, ReportRegion: region,
		// Every object a row, so that the central reports can be checked
		// against every object of the account.
		ReportAll: true}
	pol, err := orgPolicy(m.bucket, inventory, m.target)
	if err != nil {
		return nil, err
	}
	res := JobsResources(emu, EmulatorResources(emu, pol, inventory, q), m.jobs)
	encryptAWS, err := d.functionRole(account, "s3rekey-encrypt", permissions.Encrypt(res))
	if err != nil {
		return nil, err
	}
	plannerAWS, err := d.functionRole(account, "s3rekey-planner", permissions.Planner(res))
	if err != nil {
		return nil, err
	}
	if err := d.readerRole(account, res, q); err != nil {
		return nil, err
	}
	if err := putRecord(ctx, cfg, deployment.Record{Version: deployment.Version, Account: account, Region: region, JobsTable: JobsTable,
		WorkQueueURL: q.Work, WorkDLQURL: q.WorkDLQ, ControlQueueURL: q.Control, ControlDLQURL: q.ControlDLQ,
		ReportLocation: "s3://" + CentralReports + "/" + m.jobs.ReportPrefix}); err != nil {
		return nil, err
	}
	if err := seedMember(ctx, s3c, m.bucket, aws.ToString(old.KeyMetadata.Arn), d.opts.Objects); err != nil {
		return nil, err
	}
	if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: m.bucket, DestinationBucket: inventory, Prefix: "inventory", Format: "CSV"}); err != nil {
		return nil, err
	}
	d.say("account %s: %d objects in s3://%s, target key %s, reports to s3://%s/%s/", account, d.opts.Objects, m.bucket, m.target,
		CentralReports, m.jobs.ReportPrefix)
	m.pipeline = pipeline.New(cfg, pol, q, pipeline.Options{EncryptAWS: &encryptAWS, PlannerAWS: &plannerAWS, Jobs: m.jobs, Logger: d.opts.Logger})
	return m, nil
}

// functionRole is a function's identity in account, allowed its
// deployed statements only.
func (d *orgDemo) functionRole(account, name string, stmts []permissions.Statement) (aws.Config, error) {
	key, err := d.org.AddUser(account, name, permissions.PolicyDocument(stmts))
	if err != nil {
		return aws.Config{}, err
	}
	return clientConfig(d.org.AWSConfig(key, "", "")), nil
}

// readerRole is the member stack's read-only role for the organization
// view, trusting the management account.
func (d *orgDemo) readerRole(account string, res permissions.Resources, q pipeline.Queues) error {
	arn := func(url string) string {
		return "arn:aws:sqs:" + res.Region + ":" + account + ":" + url[len(url)-len(queueName(url)):]
	}
	view := permissions.View{DeploymentParameterARN: "arn:aws:ssm:" + res.Region + ":" + account + ":parameter" + deployment.DefaultParameterName,
		QueueARNs: []string{arn(q.Work), arn(q.WorkDLQ), arn(q.Control), arn(q.ControlDLQ)}}
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}`, OrgManagement)
	_, err := d.org.PutRole(account, deployment.ReaderRoleName(deployment.DefaultReaderRoleName, res.Region), []byte(trust), permissions.PolicyDocument(permissions.Reader(res, view)))
	return err
}

func queueName(url string) string { return url[strings.LastIndex(url, "/")+1:] }
