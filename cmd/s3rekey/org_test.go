package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/orgview"
	"github.com/s3rekey/s3rekey/internal/witness"
)

func TestMain(m *testing.M) { witness.Main(m) }

// orgWorld is an organization of three accounts under one OU: two with a
// deployment (a jobs table holding jobs written by the jobs store, queues
// and a deployment record), one with none.
type orgWorld struct {
	w          witness.Witness
	backend    orgBackend
	ou         string
	deployed   []string // account ids, in creation order
	bare       string
	wantJobs   map[string]orgview.Jobs
	policyFile string
}

// memberConfig is the configuration of a member account: the witness's,
// with the credentials of a role assumed in it.
func memberConfig(w witness.Witness, account string) aws.Config {
	cfg := w.Cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(w.Cfg), "arn:aws:iam::"+account+":role/"+adminRole))
	return cfg
}

func newOrgWorld(t *testing.T, ow orgWitness) *orgWorld {
	t.Helper()
	w := ow.Witness
	ou := ow.backend.createUnit(t, witness.Name("pilot"))
	o := &orgWorld{w: w, backend: ow.backend, ou: ou, wantJobs: map[string]orgview.Jobs{}}
	var ids []string
	for i := range 3 {
		ids = append(ids, ow.backend.createAccount(t, witness.Name(fmt.Sprintf("member%d", i)), ou))
	}
	o.deployed, o.bare = ids[:2], ids[2]
	// The first account: a running inventory job and a rolling uploads
	// job; the second: a failed job, an uploads job and a dead letter.
	o.deploy(t, ids[0], 0, []jobs.Counts{{Planned: 40, Done: 25}, {Planned: 7, Done: 7}})
	o.deploy(t, ids[1], 1, []jobs.Counts{{Planned: 3, Done: 3}})
	o.policyFile = filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(o.policyFile, []byte(`{"rules":[{"name":"all","select":{"names":["org-*"]},"settings":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

// deploy makes in account what a member stack makes for the view: the
// jobs table, queues and the deployment record; then writes, with the
// jobs store, one inventory job and an uploads job per counts, failing
// failed of the inventory jobs, and a bucket for the estate view.
func (o *orgWorld) deploy(t *testing.T, account string, failed int, uploads []jobs.Counts) {
	t.Helper()
	ctx := context.Background()
	cfg := memberConfig(o.w, account)
	table := witness.Name("s3rekey-jobs")
	if err := demo.CreateJobsTable(ctx, cfg, table); err != nil {
		t.Fatal(err)
	}
	q := sqs.NewFromConfig(cfg)
	urls := map[string]string{}
	for _, n := range []string{"work", "work-dlq", "control", "control-dlq"} {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(witness.Name("s3rekey-" + n))})
		if err != nil {
			t.Fatal(err)
		}
		urls[n] = aws.ToString(out.QueueUrl)
	}
	want := orgview.Jobs{ByState: map[string]int{}}
	store := &jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: table}
	manifest := fmt.Sprintf("s3://inventory-%s/photos/manifest.json", account)
	id := jobs.InventoryID(manifest)
	if _, err := store.Begin(ctx, id, jobs.KindInventory, manifest, 2, ""); err != nil {
		t.Fatal(err)
	}
	want.Jobs++
	if failed > 0 {
		if err := store.Fail(ctx, id, "the manifest's bucket is gone"); err != nil {
			t.Fatal(err)
		}
		want.ByState[jobs.StateFailed]++
		want.Failed++
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls["work-dlq"]), MessageBody: aws.String("{}")}); err != nil {
			t.Fatal(err)
		}
	} else {
		want.ByState[jobs.StatePlanning]++
	}
	for i, c := range uploads {
		if err := store.AddUploads(ctx, fmt.Sprintf("org-photos-%d", i), time.Now(), c); err != nil {
			t.Fatal(err)
		}
		want.Jobs++
		want.ByState[jobs.StateRolling]++
		want.Planned += c.Planned
		want.Done += c.Done
	}
	o.wantJobs[account] = want
	rec, err := json.Marshal(deployment.Record{Version: deployment.Version, Account: account, Region: o.w.Cfg.Region, JobsTable: table,
		WorkQueueURL: urls["work"], WorkDLQURL: urls["work-dlq"], ControlQueueURL: urls["control"], ControlDLQURL: urls["control-dlq"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(deployment.DefaultParameterName),
		Type: ssmtypes.ParameterTypeString, Value: aws.String(string(rec))}); err != nil {
		t.Fatalf("PutParameter: %v", err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(witness.Name("org-data-" + account))}); err != nil {
		t.Fatal(err)
	}
}

// managementEnv points the AWS environment at the witness's default
// account (moto's, the organization's management account), nothing from
// this machine's AWS configuration.
func managementEnv(t *testing.T, region string) { managementEnvAs(t, region, "testing") }

// managementEnvAs is managementEnv signing with accessKey.
func managementEnvAs(t *testing.T, region, accessKey string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ENDPOINT_URL", "")
}

// orgCLI runs the CLI as the management account, on the witness.
func (o *orgWorld) orgCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	managementEnvAs(t, o.w.Cfg.Region, o.backend.managementKey())
	var out, errOut syncBuffer
	full := append([]string{args[0], "--endpoint", o.w.Endpoint, "--org", "--ou", o.ou}, args[1:]...)
	code := run(context.Background(), full, &out, &errOut)
	return code, out.String(), errOut.String()
}

// orgJSON is the JSON every --org view prints.
type orgJSON[T any] struct {
	Accounts    []orgview.Row[T] `json:"accounts"`
	Totals      T                `json:"totals"`
	NotDeployed []orgview.Flag   `json:"notDeployed"`
	Unreadable  []orgview.Flag   `json:"unreadable"`
	Behind      []orgview.Flag   `json:"behind"`
	Failing     []orgview.Flag   `json:"failing"`
}

func decodeOrg[T any](t *testing.T, out string) orgJSON[T] {
	t.Helper()
	var v orgJSON[T]
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json: %v:\n%s", err, out)
	}
	if v.NotDeployed == nil || v.Unreadable == nil || v.Behind == nil || v.Failing == nil {
		t.Errorf("--json: a section is null, not a list:\n%s", out)
	}
	return v
}

// checkRows checks the view has one row per account of the OU: the two
// deployed ones deployed, the bare one not deployed for want of its
// record, named; it returns the deployed rows by account.
func checkRows[T any](t *testing.T, o *orgWorld, v orgJSON[T]) map[string]orgview.Row[T] {
	t.Helper()
	byAccount := map[string]orgview.Row[T]{}
	for _, r := range v.Accounts {
		byAccount[r.Account] = r
	}
	if len(v.Accounts) != 3 || len(byAccount) != 3 {
		t.Fatalf("rows = %+v, want one per account of the OU (3)", v.Accounts)
	}
	for _, id := range o.deployed {
		if r := byAccount[id]; r.State != orgview.StateDeployed || r.View == nil || r.Region != o.w.Cfg.Region {
			t.Errorf("account %s: row %+v, want deployed with a view in %s", id, r, o.w.Cfg.Region)
		}
	}
	bare := byAccount[o.bare]
	if bare.State != orgview.StateNotDeployed || bare.View != nil || !strings.Contains(bare.Reason, deployment.DefaultParameterName) {
		t.Errorf("bare account: row %+v, want not deployed, naming the missing parameter", bare)
	}
	if len(v.NotDeployed) != 1 || v.NotDeployed[0].Account != o.bare {
		t.Errorf("notDeployed = %+v, want the bare account %s only", v.NotDeployed, o.bare)
	}
	if len(v.Unreadable) != 0 {
		t.Errorf("unreadable = %+v, want none", v.Unreadable)
	}
	return byAccount
}

// TestOrgViews runs jobs, status and estate --org on an organization of
// three accounts: rows, totals equal to the sum of the accounts, and the
// account without a deployment named.
func TestOrgViews(t *testing.T) {
	for _, ow := range orgWitnesses(t) {
		t.Run(ow.Name, func(t *testing.T) {
			o := newOrgWorld(t, ow)
			failing := o.deployed[1]

			code, out, errOut := o.orgCLI(t, "jobs", "--json")
			if code != exitOK {
				t.Fatalf("jobs --org: exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, "3/3 accounts read") {
				t.Errorf("jobs --org: no progress on stderr: %q", errOut)
			}
			jv := decodeOrg[orgview.Jobs](t, out)
			rows := checkRows(t, o, jv)
			var sum orgview.Jobs
			for _, id := range o.deployed {
				got, want := *rows[id].View, o.wantJobs[id]
				if got.Jobs != want.Jobs || got.Planned != want.Planned || got.Done != want.Done || got.Failed != want.Failed ||
					fmt.Sprint(got.ByState) != fmt.Sprint(want.ByState) || len(got.List) != want.Jobs {
					t.Errorf("account %s: jobs %+v, want %+v", id, got, want)
				}
				sum = sum.Add(got)
			}
			if tot := jv.Totals; tot.Jobs != sum.Jobs || tot.Planned != sum.Planned || tot.Done != sum.Done || tot.Failed != sum.Failed ||
				fmt.Sprint(tot.ByState) != fmt.Sprint(sum.ByState) || tot.Jobs != 5 || tot.Planned != 50 || tot.Done != 35 {
				t.Errorf("totals %+v, want the sum of the accounts %+v (5 jobs, 35/50 objects)", tot, sum)
			}
			if len(jv.Failing) != 1 || jv.Failing[0].Account != failing || !strings.Contains(strings.Join(jv.Failing[0].Reasons, ";"), "the manifest's bucket is gone") {
				t.Errorf("failing = %+v, want %s with its failed job's reason", jv.Failing, failing)
			}

			// A second region: a row per account in each, none deployed
			// there, the totals those of the first.
			code, out, errOut = o.orgCLI(t, "jobs", "--json", "--regions", o.w.Cfg.Region+",eu-west-1")
			if code != exitOK {
				t.Fatalf("jobs --org --regions: exit %d: %s", code, errOut)
			}
			jv2 := decodeOrg[orgview.Jobs](t, out)
			west := 0
			for _, r := range jv2.Accounts {
				if r.Region == "eu-west-1" && r.State == orgview.StateNotDeployed && strings.Contains(r.Reason, "eu-west-1") {
					west++
				}
			}
			if len(jv2.Accounts) != 6 || west != 3 || jv2.Totals.Jobs != jv.Totals.Jobs || jv2.Totals.Done != jv.Totals.Done || len(jv2.NotDeployed) != 4 {
				t.Errorf("two regions: %d rows, %d not deployed in eu-west-1, totals %+v; want 6, 3, %+v", len(jv2.Accounts), west, jv2.Totals, jv.Totals)
			}

			code, out, errOut = o.orgCLI(t, "jobs")
			if code != exitOK || !strings.Contains(out, "TOTAL") || !strings.Contains(out, "NOT DEPLOYED: 1") || !strings.Contains(out, "35/50") {
				t.Errorf("jobs --org table: exit %d, %s\n%s", code, errOut, out)
			}
			if code, _, errOut = o.orgCLI(t, "jobs", "--fail-on-behind"); code != exitFailure || !strings.Contains(errOut, "1 not deployed") {
				t.Errorf("jobs --org --fail-on-behind: exit %d (%s), want %d naming the not deployed account", code, errOut, exitFailure)
			}

			code, out, errOut = o.orgCLI(t, "status", "--json")
			if code != exitOK {
				t.Fatalf("status --org: exit %d: %s", code, errOut)
			}
			sv := decodeOrg[orgview.Status](t, out)
			srows := checkRows(t, o, sv)
			if got := srows[failing].View; got == nil || got.DeadLetters != 1 || len(got.Queues) != 4 {
				t.Errorf("status of %s: %+v, want 1 dead letter over 4 queues", failing, got)
			}
			if sv.Totals.DeadLetters != 1 || len(sv.Failing) != 1 || sv.Failing[0].Account != failing {
				t.Errorf("status totals %+v, failing %+v: want the one dead letter of %s", sv.Totals, sv.Failing, failing)
			}

			code, out, errOut = o.orgCLI(t, "estate", "--policy", o.policyFile, "--json")
			if code != exitOK {
				t.Fatalf("estate --org: exit %d: %s", code, errOut)
			}
			ev := decodeOrg[orgview.Estate](t, out)
			erows := checkRows(t, o, ev)
			var managed int
			for _, id := range o.deployed {
				managed += erows[id].View.Managed
				if erows[id].View.Managed != 1 {
					t.Errorf("estate of %s: %+v, want its one org-data bucket managed", id, erows[id].View)
				}
			}
			if ev.Totals.Managed != managed || len(ev.Behind) != 2 {
				t.Errorf("estate totals %+v, behind %+v: want %d managed, both accounts behind (EventBridge off)", ev.Totals, ev.Behind, managed)
			}
		})
	}
}

// TestOrgExitStatus: a command line that cannot work is a usage error
// (2); an organization that cannot be listed fails (1) with
// Organizations' error, before any account is read.
func TestOrgExitStatus(t *testing.T) {
	var calls []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Header.Get("X-Amz-Target"))
		mu.Unlock()
		// Organizations' answer in an account that is not in an
		// organization (awsJson1_1 error shape).
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "AWSOrganizationsNotInUseException")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"AWSOrganizationsNotInUseException","Message":"Your account is not a member of an organization."}`)
	}))
	defer srv.Close()
	managementEnv(t, "us-east-1")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"jobs show is one account's", []string{"jobs", "show", "inv-0123456789ab", "--org"}, exitUsage, "without --org"},
		{"no accounts at once", []string{"status", "--org", "--concurrency", "0"}, exitUsage, "--concurrency must be positive"},
		{"estate needs its policy", []string{"estate", "--org"}, exitUsage, "--policy FILE is required"},
		{"jobs, organization not listable", []string{"jobs", "--org"}, exitFailure, "AWSOrganizationsNotInUseException"},
		{"status, organization not listable", []string{"status", "--org", "--json"}, exitFailure, "listing the organization's accounts"},
		{"an OU not listable", []string{"jobs", "--org", "--ou", "ou-ab12-pilot"}, exitFailure, "listing the accounts of ou-ab12-pilot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			code := run(context.Background(), append([]string{tc.args[0], "--endpoint", srv.URL}, tc.args[1:]...), &out, &errOut)
			if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.wantCode, tc.wantErr)
			}
			if out.String() != "" {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
	for _, c := range calls {
		if !strings.HasPrefix(c, "AWSOrganizationsV20161128.List") {
			t.Errorf("called %q: nothing but the listing should be called when it fails", c)
		}
	}
	if len(calls) == 0 {
		t.Error("the organization was never asked")
	}
}
