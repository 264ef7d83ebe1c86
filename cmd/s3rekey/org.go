package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/orgview"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// orgFlags are the flags of the organization views (jobs, status and
// estate with --org).
type orgFlags struct {
	enabled                bool
	ous, accounts, regions list
	readerRole, parameter  string
	concurrency            int
	failOnAttention        bool
}

// list is a flag of comma-separated values that may also be repeated.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func addOrgFlags(fs *flag.FlagSet) *orgFlags {
	o := &orgFlags{}
	fs.BoolVar(&o.enabled, "org", false, "show every account of the organization side by side (run from the management or delegated administrator account)")
	fs.Var(&o.ous, "ou", "with --org: only the accounts under these `OU`s or roots, at any depth (comma-separated or repeated)")
	fs.Var(&o.accounts, "accounts", "with --org: only these `ACCOUNT` ids (comma-separated or repeated)")
	fs.Var(&o.regions, "regions", "with --org: the `REGION`s to read in every account (comma-separated; default: --region)")
	fs.StringVar(&o.readerRole, "reader-role", deployment.DefaultReaderRoleName, "with --org: the base `NAME` of the read-only role every member stack creates, ROLE-REGION in each region")
	fs.StringVar(&o.parameter, "parameter", deployment.DefaultParameterName, "with --org: the SSM `PARAMETER` holding each member's deployment record")
	fs.IntVar(&o.concurrency, "concurrency", orgview.DefaultConcurrency, "with --org: accounts read at once")
	fs.BoolVar(&o.failOnAttention, "fail-on-behind", false, "with --org: exit 1 when any account is behind, failing, not deployed or unreadable")
	return o
}

// collector is the organization view's reader, from the caller's
// credentials.
func (o *orgFlags) collector(ctx context.Context, conn *awsFlags, stderr io.Writer) (*orgview.Collector, error) {
	if o.concurrency <= 0 {
		return nil, usageError{errors.New("--concurrency must be positive")}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return nil, err
	}
	return &orgview.Collector{Org: organizations.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg),
		Parameters: func(c aws.Config) orgview.GetParameterAPI { return ssm.NewFromConfig(c) },
		Base:       cfg, Selection: orgview.Selection{OUs: o.ous, Accounts: o.accounts}, Regions: o.regions,
		ReaderRole: o.readerRole, Parameter: o.parameter, Concurrency: o.concurrency, Progress: stderr}, nil
}

// orgOutput is what every organization view prints with --json.
type orgOutput[T any] struct {
	Accounts []orgview.Row[T] `json:"accounts"`
	Totals   T                `json:"totals"`
	orgview.Attention
}

// showOrg collects a view, prints it (its table drawn by table, or JSON)
// and what needs attention, and with --fail-on-behind fails when anything
// does.
func showOrg[T orgview.Adder[T]](ctx context.Context, o *orgFlags, conn *awsFlags, asJSON bool, stdout, stderr io.Writer,
	gather orgview.GatherFunc[T], header string, cells func(T) string) error {
	c, err := o.collector(ctx, conn, stderr)
	if err != nil {
		return err
	}
	view, err := orgview.Collect(ctx, c, gather)
	if err != nil {
		return err
	}
	total, attention := orgview.Total(view), orgview.AttentionOf(view)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(orgOutput[T]{Accounts: view.Rows, Totals: total, Attention: attention})
	} else {
		err = writeOrgTable(stdout, view, header, cells)
	}
	if err != nil {
		return err
	}
	if o.failOnAttention && attention.Any() {
		return fmt.Errorf("%d behind, %d failing, %d not deployed, %d unreadable", len(attention.Behind), len(attention.Failing),
			len(attention.NotDeployed), len(attention.Unreadable))
	}
	return nil
}

// writeOrgTable prints a view as a table, a row per account and region
// and the totals, then what needs attention.
func writeOrgTable[T orgview.Adder[T]](w io.Writer, view *orgview.View[T], header string, cells func(T) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tNAME\tREGION\tSTATE\t"+header)
	for _, r := range view.Rows {
		row := strings.Repeat("-\t", strings.Count(header, "\t")) + "-"
		if r.View != nil {
			row = cells(*r.View)
		}
		fmt.Fprintln(tw, r.Account+"\t"+r.Name+"\t"+r.Region+"\t"+r.State+"\t"+row)
	}
	fmt.Fprintf(tw, "TOTAL\t%d rows\t\t\t%s\n", len(view.Rows), cells(orgview.Total(view)))
	if err := tw.Flush(); err != nil {
		return err
	}
	return orgview.AttentionOf(view).Write(w)
}

// The jobs view's columns.
const jobsOrgHeader = "JOBS\tRUNNING\tCOMPLETE\tFAILED\tSTALLED\tPAUSED\tOBJECTS"

func jobsOrgCells(v orgview.Jobs) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%d/%d", v.Jobs, v.ByState[jobs.StateRunning]+v.ByState[jobs.StatePlanning],
		v.ByState[jobs.StateComplete], v.Failed, v.Stalled, v.Paused, v.Done, v.Planned)
}

func runJobsOrg(ctx context.Context, o *orgFlags, conn *awsFlags, limit int, stalledAfter time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	gather := func(ctx context.Context, d orgview.Deployment) (orgview.Jobs, orgview.Finding, error) {
		store := &jobs.Store{API: dynamodb.NewFromConfig(d.Config), Table: d.Record.JobsTable}
		list, err := listJobs(ctx, store, limit, stalledAfter)
		if err != nil {
			return orgview.Jobs{}, orgview.Finding{}, err
		}
		paused, err := pausesOf(ctx, store.API, store.Table)
		if err != nil {
			return orgview.Jobs{}, orgview.Finding{}, fmt.Errorf("reading the pauses: %w", err)
		}
		v, f := orgview.SummarizeJobs(list, paused)
		return v, f, nil
	}
	return showOrg(ctx, o, conn, asJSON, stdout, stderr, gather, jobsOrgHeader, jobsOrgCells)
}

func runStatusOrg(ctx context.Context, o *orgFlags, conn *awsFlags, asJSON bool, stdout, stderr io.Writer) error {
	gather := func(ctx context.Context, d orgview.Deployment) (orgview.Status, orgview.Finding, error) {
		q := pipeline.Queues{Work: d.Record.WorkQueueURL, WorkDLQ: d.Record.WorkDLQURL, Control: d.Record.ControlQueueURL, ControlDLQ: d.Record.ControlDLQURL,
			Uploads: d.Record.UploadsQueueURL, UploadsDLQ: d.Record.UploadsDLQURL}
		depths, paused, err := deploymentStatus(ctx, dynamodb.NewFromConfig(d.Config), sqs.NewFromConfig(d.Config), d.Record.JobsTable, q)
		if err != nil {
			return orgview.Status{}, orgview.Finding{}, err
		}
		v, f := orgview.SummarizeStatus(depths, paused)
		return v, f, nil
	}
	return showOrg(ctx, o, conn, asJSON, stdout, stderr, gather, "BACKLOG\tDEAD LETTERS\tPAUSED",
		func(v orgview.Status) string { return fmt.Sprintf("%d\t%d\t%d", v.Backlog, v.DeadLetters, v.Paused) })
}

func runEstateOrg(ctx context.Context, o *orgFlags, conn *awsFlags, policyPath string, asJSON bool, stdout, stderr io.Writer) error {
	if _, err := loadPolicy(policyPath); err != nil {
		return err
	}
	gather := func(ctx context.Context, d orgview.Deployment) (orgview.Estate, orgview.Finding, error) {
		// Each account resolves the policy's aliases to its own keys.
		pol, err := loadPolicy(policyPath)
		if err != nil {
			return orgview.Estate{}, orgview.Finding{}, err
		}
		pol, api, err := readyPolicy(ctx, d.Config, pol, true)
		if err != nil {
			return orgview.Estate{}, orgview.Finding{}, err
		}
		rep, err := (&estate.Describer{S3: api, Policy: pol, AccountID: d.Account.ID, Region: d.Region}).Describe(ctx)
		if err != nil {
			return orgview.Estate{}, orgview.Finding{}, err
		}
		v, f := orgview.SummarizeEstate(rep)
		return v, f, nil
	}
	return showOrg(ctx, o, conn, asJSON, stdout, stderr, gather, "BUCKETS\tMANAGED\tENFORCED\tOBJECTS\tBYTES\tCOST\tPROBLEMS",
		func(v orgview.Estate) string {
			return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t$%.4f\t%d", v.Buckets, v.Managed, v.Enrolled, v.Objects, v.Bytes, v.Cost, v.Problems)
		})
}
