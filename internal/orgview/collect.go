package orgview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/deployment"
)

// GetParameterAPI is the SSM call that reads a deployment's Record.
type GetParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var (
	_ GetParameterAPI              = (*ssm.Client)(nil)
	_ stscreds.AssumeRoleAPIClient = (*sts.Client)(nil)
)

// States of a row of a view.
const (
	// StateDeployed: the record was read and the view gathered.
	StateDeployed = "deployed"
	// StateNotDeployed: the reader role cannot be assumed, or the record
	// parameter does not exist (Row.Reason says which).
	StateNotDeployed = "not-deployed"
	// StateUnreadable: the deployment is there but could not be read (a
	// record that does not parse, a call refused or failing).
	StateUnreadable = "unreadable"
)

// Deployment is one member deployment, as a view's gathering gets it.
type Deployment struct {
	Account Account
	Region  string
	// Config has the reader role's credentials, in Region.
	Config aws.Config
	Record deployment.Record
}

// Finding is what a view's gathering found wrong with a deployment.
type Finding struct {
	Behind  []string
	Failing []string
}

// GatherFunc gathers one view of one deployment.
type GatherFunc[T any] func(ctx context.Context, d Deployment) (T, Finding, error)

// Row is one account and region of a view.
type Row[T any] struct {
	Account string `json:"account"`
	Name    string `json:"name"`
	Region  string `json:"region"`
	State   string `json:"state"`
	// Reason says why a row is not deployed or unreadable.
	Reason  string   `json:"reason,omitempty"`
	Behind  []string `json:"behind,omitempty"`
	Failing []string `json:"failing,omitempty"`
	// View is what the view gathered; nil unless deployed.
	View *T `json:"view,omitempty"`
}

// View is one view of the organization: a row per selected active
// account and region, by account then region as asked, and the accounts
// skipped because they are suspended or closed.
type View[T any] struct {
	Rows      []Row[T]  `json:"accounts"`
	Suspended []Account `json:"suspended"`
}

// DefaultConcurrency is how many accounts are read at once.
const DefaultConcurrency = 8

// SessionName is the role session name of the view's AssumeRole calls,
// so that the member accounts' CloudTrail names who read them.
const SessionName = "s3rekey-org-view"

// Collector reads a view of every selected account.
type Collector struct {
	Org OrganizationsAPI
	// STS assumes the reader roles, from the caller's account.
	STS stscreds.AssumeRoleAPIClient
	// Parameters makes the SSM client of a deployment's configuration
	// (ssm.NewFromConfig in production).
	Parameters func(aws.Config) GetParameterAPI
	// Base is the caller's configuration: each deployment's Config is a
	// copy with the reader role's credentials and the deployment's region.
	Base      aws.Config
	Selection Selection
	// Regions are the regions read in every account (default: Base's).
	Regions []string
	// ReaderRole and Parameter default to deployment's names.
	ReaderRole, Parameter string
	// Concurrency is how many accounts are read at once (default
	// DefaultConcurrency).
	Concurrency int
	// Progress, when set, gets a line per account read.
	Progress io.Writer
}

// Collect lists the selected accounts and gathers the view of each of
// their deployments. Only a failure to list the organization is an
// error: an account that cannot be read is a row saying why.
func Collect[T any](ctx context.Context, c *Collector, gather GatherFunc[T]) (*View[T], error) {
	accounts, err := ListAccounts(ctx, c.Org, c.Selection)
	if err != nil {
		return nil, err
	}
	regions := c.Regions
	if len(regions) == 0 {
		regions = []string{c.Base.Region}
	}
	view := &View[T]{Suspended: []Account{}}
	var active []Account
	for _, a := range accounts {
		if a.Active() {
			active = append(active, a)
		} else {
			view.Suspended = append(view.Suspended, a)
		}
	}
	rows := make([][]Row[T], len(active))
	workers := c.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i, a := range active {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rows[i] = collectAccount(ctx, c, a, regions, gather)
			if c.Progress != nil {
				mu.Lock()
				done++
				fmt.Fprintf(c.Progress, "organization view: %d/%d accounts read (%s)\n", done, len(active), a.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, r := range rows {
		view.Rows = append(view.Rows, r...)
	}
	if view.Rows == nil {
		view.Rows = []Row[T]{}
	}
	return view, nil
}

// collectAccount reads one account's deployments, a row per region, each
// through the reader role of its region (deployment.ReaderRoleName).
func collectAccount[T any](ctx context.Context, c *Collector, a Account, regions []string, gather GatherFunc[T]) []Row[T] {
	role := c.ReaderRole
	if role == "" {
		role = deployment.DefaultReaderRoleName
	}
	rows := make([]Row[T], 0, len(regions))
	for _, region := range regions {
		row := Row[T]{Account: a.ID, Name: a.Name, Region: region}
		arn := "arn:" + a.Partition + ":iam::" + a.ID + ":role/" + deployment.ReaderRoleName(role, region)
		creds := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(c.STS, arn, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = SessionName
		}))
		_, assumeErr := creds.Retrieve(ctx)
		if assumeErr != nil {
			row.State, row.Reason = assumeProblem(arn, assumeErr)
			rows = append(rows, row)
			continue
		}
		cfg := c.Base.Copy()
		cfg.Region, cfg.Credentials = region, creds
		rec, state, reason := c.readRecord(ctx, cfg, a.ID, region)
		if state != StateDeployed {
			row.State, row.Reason = state, reason
			rows = append(rows, row)
			continue
		}
		v, f, err := gather(ctx, Deployment{Account: a, Region: region, Config: cfg, Record: rec})
		if err != nil {
			row.State, row.Reason = StateUnreadable, err.Error()
			rows = append(rows, row)
			continue
		}
		row.State, row.View, row.Behind, row.Failing = StateDeployed, &v, f.Behind, f.Failing
		rows = append(rows, row)
	}
	return rows
}

// assumeProblem classifies a failed AssumeRole. STS answers AccessDenied
// both when the role does not exist and when its trust policy does not
// admit the caller (the AssumeRole API reference lists only that error
// for both), so the reason names both.
func assumeProblem(arn string, err error) (state, reason string) {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" {
		return StateNotDeployed, "reader role " + arn + " cannot be assumed (AccessDenied: the member stack is not deployed, or the role does not trust this account)"
	}
	return StateUnreadable, "assuming " + arn + ": " + err.Error()
}

func (c *Collector) readRecord(ctx context.Context, cfg aws.Config, account, region string) (deployment.Record, string, string) {
	name := c.Parameter
	if name == "" {
		name = deployment.DefaultParameterName
	}
	out, err := c.Parameters(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae) && ae.ErrorCode() == "ParameterNotFound":
		return deployment.Record{}, StateNotDeployed, "no deployment record: parameter " + name + " does not exist in " + region
	case err != nil:
		return deployment.Record{}, StateUnreadable, "reading parameter " + name + ": " + err.Error()
	case out.Parameter == nil:
		return deployment.Record{}, StateUnreadable, "reading parameter " + name + ": no value"
	}
	rec, err := deployment.Parse([]byte(aws.ToString(out.Parameter.Value)))
	switch {
	case err != nil:
		return rec, StateUnreadable, "parameter " + name + ": " + err.Error()
	case rec.Account != account || rec.Region != region:
		return rec, StateUnreadable, fmt.Sprintf("parameter %s describes the deployment of %s in %s, not this one", name, rec.Account, rec.Region)
	}
	return rec, StateDeployed, ""
}
