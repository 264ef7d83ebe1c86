package orgview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// fakeOrg is an organization: accounts by parent, OUs by parent, served
// pageSize at a time with NextToken as Organizations pages.
type fakeOrg struct {
	accounts map[string][]orgtypes.Account // by parent id
	ous      map[string][]string
	pageSize int
	fail     error
	calls    int
}

var _ OrganizationsAPI = (*fakeOrg)(nil)

func page[T any](items []T, token *string, size int) ([]T, *string) {
	start := 0
	if token != nil {
		fmt.Sscan(*token, &start)
	}
	end := min(start+size, len(items))
	if end < len(items) {
		return items[start:end], aws.String(fmt.Sprint(end))
	}
	return items[start:end], nil
}

func (f *fakeOrg) ListAccounts(_ context.Context, in *organizations.ListAccountsInput, _ ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	var all []orgtypes.Account
	for _, p := range []string{"r-root", "ou-a", "ou-b", "ou-c"} {
		all = append(all, f.accounts[p]...)
	}
	items, next := page(all, in.NextToken, f.pageSize)
	return &organizations.ListAccountsOutput{Accounts: items, NextToken: next}, nil
}

func (f *fakeOrg) ListAccountsForParent(_ context.Context, in *organizations.ListAccountsForParentInput, _ ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error) {
	f.calls++
	items, next := page(f.accounts[aws.ToString(in.ParentId)], in.NextToken, f.pageSize)
	return &organizations.ListAccountsForParentOutput{Accounts: items, NextToken: next}, nil
}

func (f *fakeOrg) ListChildren(_ context.Context, in *organizations.ListChildrenInput, _ ...func(*organizations.Options)) (*organizations.ListChildrenOutput, error) {
	f.calls++
	if in.ChildType != orgtypes.ChildTypeOrganizationalUnit {
		return nil, errors.New("asked for children that are not OUs")
	}
	var children []orgtypes.Child
	for _, id := range f.ous[aws.ToString(in.ParentId)] {
		children = append(children, orgtypes.Child{Id: aws.String(id), Type: orgtypes.ChildTypeOrganizationalUnit})
	}
	items, next := page(children, in.NextToken, f.pageSize)
	return &organizations.ListChildrenOutput{Children: items, NextToken: next}, nil
}

func account(id string, state orgtypes.AccountState) orgtypes.Account {
	return orgtypes.Account{Id: aws.String(id), Name: aws.String("acct-" + id), Arn: aws.String("arn:aws-cn:organizations::000000000000:account/o-x/" + id), State: state}
}

// newFakeOrg: the root holds 100000000001 and OU a; a holds 2..4 and OU
// b; b holds 5 (suspended) and OU c; c holds 6. OU z is empty.
func newFakeOrg() *fakeOrg {
	return &fakeOrg{pageSize: 2, accounts: map[string][]orgtypes.Account{
		"r-root": {account("100000000001", orgtypes.AccountStateActive)},
		"ou-a":   {account("100000000004", orgtypes.AccountStateActive), account("100000000002", orgtypes.AccountStateActive), account("100000000003", orgtypes.AccountStateActive)},
		"ou-b":   {{Id: aws.String("100000000005"), Name: aws.String("old"), Status: orgtypes.AccountStatusSuspended}},
		"ou-c":   {account("100000000006", orgtypes.AccountStateActive)},
	}, ous: map[string][]string{"r-root": {"ou-a", "ou-z"}, "ou-a": {"ou-b"}, "ou-b": {"ou-c"}}}
}

func ids(as []Account) string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID[len(a.ID)-1:])
	}
	return strings.Join(out, ",")
}

func TestListAccounts(t *testing.T) {
	tests := []struct {
		name    string
		sel     Selection
		want    string
		wantErr string
	}{
		{"whole organization, over pages", Selection{}, "1,2,3,4,5,6", ""},
		{"an OU at any depth", Selection{OUs: []string{"ou-b"}}, "5,6", ""},
		{"overlapping OUs, each account once", Selection{OUs: []string{"ou-a", "ou-c"}}, "2,3,4,5,6", ""},
		{"an empty OU", Selection{OUs: []string{"ou-z"}}, "", ""},
		{"a list of accounts", Selection{Accounts: []string{"100000000006", "100000000002", "100000000006"}}, "2,6", ""},
		{"a list within an OU", Selection{OUs: []string{"ou-a"}, Accounts: []string{"100000000003"}}, "3", ""},
		{"an account not in the organization", Selection{Accounts: []string{"999999999999"}}, "", "999999999999 is not in the organization"},
		{"an account not under the OU", Selection{OUs: []string{"ou-c"}, Accounts: []string{"100000000001"}}, "", "100000000001 is not under ou-c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ListAccounts(context.Background(), newFakeOrg(), tc.sel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ids(got) != tc.want {
				t.Fatalf("ListAccounts = %s, %v; want %s", ids(got), err, tc.want)
			}
		})
	}
	got, _ := ListAccounts(context.Background(), newFakeOrg(), Selection{})
	if got[0].Partition != "aws-cn" || got[4].State != "SUSPENDED" || got[4].Active() || !got[0].Active() {
		t.Errorf("accounts = %+v: want the partition from the ARN and the suspended one (by Status) inactive", got)
	}
}

// fakeSTS assumes a role in an account by handing out that account's id
// as the access key; roles in denied are AccessDenied.
type fakeSTS struct {
	mu     sync.Mutex
	denied map[string]bool
	failed map[string]bool
	arns   []string
}

func (f *fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	f.mu.Lock()
	f.arns = append(f.arns, aws.ToString(in.RoleArn)+" "+aws.ToString(in.RoleSessionName))
	f.mu.Unlock()
	account := strings.Split(aws.ToString(in.RoleArn), ":")[4]
	switch {
	case f.denied[account]:
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}
	case f.failed[account]:
		return nil, &smithy.GenericAPIError{Code: "RegionDisabledException", Message: "STS is not activated"}
	}
	return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{AccessKeyId: aws.String(account), SecretAccessKey: aws.String("s"),
		SessionToken: aws.String("t"), Expiration: aws.Time(time.Now().Add(time.Hour))}}, nil
}

// fakeSSM holds parameters by account and region.
type fakeSSM struct {
	params map[string]string // "account region name" -> value
	cfg    aws.Config
}

func (f fakeSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	creds, err := f.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := f.params[creds.AccessKeyID+" "+f.cfg.Region+" "+aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String(v)}}, nil
}

func record(account, region string) string {
	b, _ := json.Marshal(deployment.Record{Version: deployment.Version, Account: account, Region: region, JobsTable: "t-" + account,
		WorkQueueURL: "w", ControlQueueURL: "c"})
	return string(b)
}

const (
	east = "us-east-1"
	west = "eu-west-1"
)

// newCollector is the fake organization with deployments: 1 in both
// regions, 2 in east only, 3 without its role, 4 with a record of
// another account in east and a failing gathering in west, 6 whose STS
// fails; 5 is suspended.
func newCollector(st *fakeSTS) *Collector {
	params := map[string]string{}
	for _, p := range []struct{ account, region, rec string }{
		{"100000000001", east, record("100000000001", east)}, {"100000000001", west, record("100000000001", west)},
		{"100000000002", east, record("100000000002", east)},
		{"100000000004", east, record("100000000009", east)}, {"100000000004", west, record("100000000004", west)},
	} {
		params[p.account+" "+p.region+" "+deployment.DefaultParameterName] = p.rec
	}
	return &Collector{Org: newFakeOrg(), STS: st, Base: aws.Config{Region: east},
		Parameters: func(cfg aws.Config) GetParameterAPI { return fakeSSM{params: params, cfg: cfg} },
		Regions:    []string{east, west}, Concurrency: 2}
}

func job(id, state string, planned, done int64) *jobs.Job {
	return &jobs.Job{ID: id, State: state, Planned: planned, Done: done, TerminalReason: "reason of " + id}
}

// jobsOf are the jobs view's inputs per deployment of newCollector.
var jobsOf = map[string][]*jobs.Job{
	"100000000001 " + east: {job("inv-1", jobs.StateRunning, 10, 4), job("inv-2", jobs.StateFailed, 3, 1)},
	"100000000001 " + west: {job("inv-3", jobs.StateComplete, 5, 5)},
	"100000000002 " + east: {job("inv-4", jobs.StateStalled, 8, 2), job("upl-5", jobs.StateRolling, 7, 7)},
}

var pausesOf = map[string][]encrypt.Pause{"100000000001 " + west: {{Scope: "key:k", Reason: "KMS.DisabledException"}}}

func gatherJobs(_ context.Context, d Deployment) (Jobs, Finding, error) {
	where := d.Account.ID + " " + d.Region
	if d.Account.ID == "100000000004" {
		return Jobs{}, Finding{}, errors.New("reading the jobs: throttled")
	}
	if d.Record.JobsTable != "t-"+d.Account.ID || d.Config.Region != d.Region {
		return Jobs{}, Finding{}, fmt.Errorf("%s: gathered with record %+v in %s", where, d.Record, d.Config.Region)
	}
	v, f := SummarizeJobs(jobsOf[where], pausesOf[where])
	return v, f, nil
}

func TestCollectJobs(t *testing.T) {
	st := &fakeSTS{denied: map[string]bool{"100000000003": true}, failed: map[string]bool{"100000000006": true}}
	view, err := Collect(context.Background(), newCollector(st), gatherJobs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range view.Rows {
		got = append(got, r.Account[len(r.Account)-1:]+" "+r.Region+" "+r.State)
	}
	want := []string{"1 us-east-1 deployed", "1 eu-west-1 deployed", "2 us-east-1 deployed", "2 eu-west-1 not-deployed",
		"3 us-east-1 not-deployed", "3 eu-west-1 not-deployed", "4 us-east-1 unreadable", "4 eu-west-1 unreadable",
		"6 us-east-1 unreadable", "6 eu-west-1 unreadable"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(view.Suspended) != 1 || view.Suspended[0].ID != "100000000005" {
		t.Errorf("suspended = %+v, want 100000000005", view.Suspended)
	}
	// The role of each region is assumed once per account and region
	// (deployment.ReaderRoleName), in its partition, under the view's
	// session name; never in the suspended account.
	if len(st.arns) != 10 || !strings.Contains(strings.Join(st.arns, "\n"), "arn:aws-cn:iam::100000000003:role/s3rekey-org-reader-eu-west-1 s3rekey-org-view") ||
		strings.Contains(strings.Join(st.arns, "\n"), "100000000005") {
		t.Errorf("AssumeRole calls = %q", st.arns)
	}

	// The totals are the sum of the accounts' jobs.
	total := Total(view)
	var jobsN, failed, stalled, paused int
	var planned, done int64
	for where, list := range jobsOf {
		for _, j := range list {
			jobsN++
			planned += j.Planned
			done += j.Done
			failed += map[bool]int{true: 1}[j.State == jobs.StateFailed]
			stalled += map[bool]int{true: 1}[j.State == jobs.StateStalled]
		}
		paused += len(pausesOf[where])
	}
	if total.Jobs != jobsN || total.Planned != planned || total.Done != done || total.Failed != failed || total.Stalled != stalled ||
		total.Paused != paused || total.ByState[jobs.StateRunning] != 1 || total.ByState[jobs.StateRolling] != 1 || total.List != nil {
		t.Errorf("totals %+v, want %d jobs, %d/%d objects, %d failed, %d stalled, %d paused, no list", total, jobsN, done, planned, failed, stalled, paused)
	}

	a := AttentionOf(view)
	flags := func(fs []Flag) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Account[len(f.Account)-1:]+" "+f.Region+": "+strings.Join(f.Reasons, "; "))
		}
		return strings.Join(out, "\n")
	}
	for _, c := range []struct {
		name string
		got  string
		want []string
	}{
		{"not deployed", flags(a.NotDeployed), []string{"2 eu-west-1: no deployment record: parameter /s3rekey/deployment does not exist in eu-west-1",
			"3 us-east-1: reader role arn:aws-cn:iam::100000000003:role/s3rekey-org-reader-us-east-1 cannot be assumed (AccessDenied", "3 eu-west-1: reader role"}},
		{"unreadable", flags(a.Unreadable), []string{"4 us-east-1: parameter /s3rekey/deployment describes the deployment of 100000000009 in us-east-1",
			"4 eu-west-1: reading the jobs: throttled", "6 us-east-1: assuming arn:aws-cn:iam::100000000006:role/s3rekey-org-reader-us-east-1: ", "RegionDisabledException"}},
		{"failing", flags(a.Failing), []string{"1 us-east-1: job inv-2 failed: reason of inv-2"}},
		{"behind", flags(a.Behind), []string{"1 eu-west-1: paused by the circuit breaker: key:k (KMS.DisabledException)", "2 us-east-1: job inv-4 stalled"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.got, w) {
				t.Errorf("%s:\n%s\nlacks %q", c.name, c.got, w)
			}
		}
	}
	if n := len(a.Failing) + len(a.Behind); n != 3 || !a.Any() {
		t.Errorf("failing and behind: %d flags, want 3", n)
	}
}

func TestCollectFailsWhenTheOrganizationCannotBeListed(t *testing.T) {
	c := newCollector(&fakeSTS{})
	c.Org.(*fakeOrg).fail = &smithy.GenericAPIError{Code: "AWSOrganizationsNotInUseException"}
	if _, err := Collect(context.Background(), c, gatherJobs); err == nil || !strings.Contains(err.Error(), "listing the organization's accounts") ||
		!strings.Contains(err.Error(), "AWSOrganizationsNotInUseException") {
		t.Fatalf("err = %v, want the listing's error", err)
	}
}

func TestReaderRoleAndParameterOverrides(t *testing.T) {
	st := &fakeSTS{}
	c := newCollector(st)
	c.Selection, c.Regions, c.ReaderRole, c.Parameter = Selection{Accounts: []string{"100000000001"}}, nil, "audit-reader", "/org/s3rekey"
	view, err := Collect(context.Background(), c, gatherJobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Rows) != 1 || view.Rows[0].Region != east || view.Rows[0].State != StateNotDeployed || !strings.Contains(view.Rows[0].Reason, "/org/s3rekey") {
		t.Errorf("rows = %+v, want one in the base region, not deployed for want of /org/s3rekey", view.Rows)
	}
	if len(st.arns) != 1 || !strings.HasPrefix(st.arns[0], "arn:aws-cn:iam::100000000001:role/audit-reader-"+east+" ") {
		t.Errorf("AssumeRole calls = %q", st.arns)
	}
}

func TestSummarizeStatus(t *testing.T) {
	depths := []pipeline.QueueDepth{{Name: pipeline.DepthWork, Waiting: 5, InFlight: 2}, {Name: pipeline.DepthWorkDLQ, Waiting: 1, Delayed: 1},
		{Name: pipeline.DepthControl, Delayed: 3}, {Name: pipeline.DepthControlDLQ}}
	v, f := SummarizeStatus(depths, []encrypt.Pause{{Scope: "all", Reason: "not S3"}})
	if v.Backlog != 10 || v.DeadLetters != 2 || v.Paused != 1 || len(f.Failing) != 1 || !strings.Contains(f.Failing[0], "2 dead letters in the work DLQ") ||
		len(f.Behind) != 1 {
		t.Errorf("status %+v, finding %+v", v, f)
	}
	if sum := v.Add(v); sum.Backlog != 20 || sum.DeadLetters != 4 || sum.Paused != 2 || sum.Queues != nil {
		t.Errorf("sum %+v", sum)
	}
}

// TestJSONShape: every section is a list, never null, so that a script
// can count it; a row not deployed has no view.
func TestJSONShape(t *testing.T) {
	v := &View[Jobs]{Rows: []Row[Jobs]{{Account: "1", Region: east, State: StateNotDeployed, Reason: "no record"}}}
	b, err := json.Marshal(AttentionOf(v))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"notDeployed":[{"account":"1","name":"","region":"us-east-1","reasons":["no record"]}],"unreadable":[],"behind":[],"failing":[],"suspended":[]}` {
		t.Errorf("attention JSON = %s", b)
	}
	b, _ = json.Marshal(v.Rows[0])
	if strings.Contains(string(b), `"view"`) {
		t.Errorf("row JSON = %s, want no view", b)
	}
}

func TestSummarizeEstate(t *testing.T) {
	rep := &estate.Report{Managed: 2, Enrolled: 1, Objects: 9, Bytes: 90, Cost: 0.5, Findings: []policy.Finding{{}}, Buckets: []estate.Bucket{
		{Name: "on", Managed: true, EventBridge: true},
		{Name: "off", Managed: true},
		{Name: "unmanaged"},
		{Name: "denied", Problems: []string{"GetBucketEncryption: AccessDenied"}},
	}}
	v, f := SummarizeEstate(rep)
	if v.Buckets != 4 || v.Managed != 2 || v.Enrolled != 1 || v.Problems != 1 || v.Findings != 1 || v.Report != rep {
		t.Errorf("estate %+v", v)
	}
	if strings.Join(f.Behind, ";") != "bucket off: managed, EventBridge off (new uploads not enforced)" ||
		strings.Join(f.Failing, ";") != "bucket denied: GetBucketEncryption: AccessDenied" {
		t.Errorf("finding %+v", f)
	}
	if sum := v.Add(v); sum.Managed != 4 || sum.Objects != 18 || sum.Cost != 1 || sum.Report != nil {
		t.Errorf("sum %+v", sum)
	}
}

func TestAttentionWrite(t *testing.T) {
	a := Attention{Behind: []Flag{{Account: "1", Name: "a", Region: east, Reasons: []string{"x", "y"}}}, Failing: []Flag{},
		NotDeployed: []Flag{{Account: "2", Name: "b", Region: west, Reasons: []string{"no record"}}}, Suspended: []Account{{ID: "5", Name: "old", State: "SUSPENDED"}}}
	var b strings.Builder
	if err := a.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "\nBEHIND: 1\n  1 us-east-1 (a): x; y\n\nNOT DEPLOYED: 1\n  2 eu-west-1 (b): no record\n\nSKIPPED (suspended or closed): 1\n  5 (old): SUSPENDED\n"
	if b.String() != want {
		t.Errorf("Write =\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	if err := (Attention{}).Write(&b); err != nil || b.String() != "" || (Attention{}).Any() {
		t.Errorf("nothing to report: %q", b.String())
	}
}
