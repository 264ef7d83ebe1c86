package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// stdin is where redrive reads its confirmation; tests replace it.
var stdin io.Reader = os.Stdin

// awsFlags are the connection flags every AWS-facing command takes.
type awsFlags struct{ endpoint, region string }

// newAWSFlagSet is newFlagSet with the connection flags of every command
// that talks to AWS.
func newAWSFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *awsFlags) {
	fs := newFlagSet(name, usage, stderr)
	conn := &awsFlags{}
	fs.StringVar(&conn.endpoint, "endpoint", "", "endpoint `URL` for every AWS service (the emulator: http://127.0.0.1:4566); AWS_ENDPOINT_URL works too")
	fs.StringVar(&conn.region, "region", "", "AWS `region` (default: from the environment or the AWS config)")
	return fs, conn
}

func (a *awsFlags) load(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconf.Load(ctx, a.endpoint)
	if err != nil {
		return cfg, err
	}
	if a.region != "" {
		cfg.Region = a.region
	}
	if cfg.Region == "" {
		return cfg, usageError{errors.New("no AWS region: pass --region or set AWS_REGION")}
	}
	return cfg, nil
}

func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, usageError{errors.New("--policy FILE is required")}
	}
	p, err := policy.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// resolveKeys resolves the KMS aliases a policy names its keys by
// (DescribeKey), naming an alias that does not resolve.
func resolveKeys(ctx context.Context, cfg aws.Config, pol *policy.Policy) (*policy.Policy, error) {
	return keyalias.Resolve(ctx, kms.NewFromConfig(cfg), pol)
}

// queuesFor resolves the work and control queues (names or URLs), the
// uploads queue when given, and their dead-letter queues.
func queuesFor(ctx context.Context, api pipeline.QueueAPI, work, control, uploads string) (pipeline.Queues, error) {
	var q pipeline.Queues
	var err error
	if work == "" || control == "" {
		return q, usageError{errors.New("--work-queue and --control-queue are required")}
	}
	if q.Work, q.WorkDLQ, err = pipeline.ResolveQueue(ctx, api, work); err != nil {
		return q, err
	}
	if q.Control, q.ControlDLQ, err = pipeline.ResolveQueue(ctx, api, control); err != nil {
		return q, err
	}
	// The planner and the encrypt function dead-letter a message
	// themselves, with its reason, on their queue's last delivery.
	if q.ControlMaxReceives, err = pipeline.MaxReceives(ctx, api, q.Control); err != nil {
		return q, err
	}
	if q.WorkMaxReceives, err = pipeline.MaxReceives(ctx, api, q.Work); err != nil {
		return q, err
	}
	if q.WorkDLQ == "" || q.ControlDLQ == "" {
		return q, errors.New("the work and control queues need a redrive policy to a dead-letter queue")
	}
	if uploads != "" {
		if q.Uploads, q.UploadsDLQ, err = pipeline.ResolveQueue(ctx, api, uploads); err != nil {
			return q, err
		}
		if q.UploadsDLQ == "" {
			return q, errors.New("the uploads queue needs a redrive policy to a dead-letter queue")
		}
	}
	return q, nil
}
