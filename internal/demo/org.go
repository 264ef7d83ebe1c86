package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/orgview"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// The organization demo's accounts: the management account holds the
// central report bucket and key; three members re-key their own buckets,
// the last one joining the OU while the others run.
const (
	OrgManagement   = "111122223333"
	CentralReports  = "s3rekey-central-reports"
	orgReportsRoot  = "reports"
	orgObjectPrefix = "photos/"
)

// OrgMembers are the member accounts, in the order they join the OU.
var OrgMembers = []string{"200000000001", "200000000002", "200000000003"}

// OrgOptions configure an organization demo run.
type OrgOptions struct {
	Objects  int // objects per member account (default 300)
	Progress io.Writer
	Logger   *slog.Logger
}

// OrgAccount is what the demo found in one member account.
type OrgAccount struct {
	ID string
	// Late: the account joined the OU while the others ran, and was
	// enrolled when it did.
	Late     bool
	Objects  int   // object versions in the account's bucket
	OnTarget int   // of them, on the account's target key
	Rows     int64 // report rows of its jobs, read from the central bucket
	Jobs     *JobCheck
}

// OrgResult is the outcome of an organization demo run.
type OrgResult struct {
	Accounts []OrgAccount
	// View is the organization's jobs, read as "s3rekey jobs --org" reads
	// them: through each member's reader role.
	View *orgview.View[orgview.Jobs]
	// CrossReadRefused: a member reading another member's report was
	// refused (AccessDenied).
	CrossReadRefused bool
	Failures         []string
	Elapsed          time.Duration
}

type orgDemo struct {
	opts       OrgOptions
	org        *emulator.Organization
	ou         string
	centralKey string
}

func (o OrgOptions) withDefaults() OrgOptions {
	if o.Objects <= 0 {
		o.Objects = 300
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (d *orgDemo) say(format string, args ...any) { fmt.Fprintf(d.opts.Progress, format+"\n", args...) }

// rootConfig signs as an account's root user.
func (d *orgDemo) rootConfig(account string) aws.Config {
	return clientConfig(d.org.AWSConfig(emulator.RootAccessKey(account), "", ""))
}

// RunOrg runs the organization demo on its own emulator organization:
// two members enrolled from the start, a third joining the OU mid-run and
// enrolled when it joins, as the StackSet's automatic deployment does;
// each re-keys its bucket onto its own target key and reports into the
// central bucket; the run ends with the organization view and the
// central reports checked against every account's objects.
func RunOrg(ctx context.Context, opts OrgOptions) (*OrgResult, error) {
	opts = opts.withDefaults()
	began := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o, err := emulator.StartOrganization(ctx, emulator.OrgOptions{Management: OrgManagement})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	d := &orgDemo{opts: opts, org: o}
	d.say("emulator organization %s at %s", o.ID(), o.URL())
	if d.ou, err = o.CreateUnit(o.RootID(), "pilot"); err != nil {
		return nil, err
	}
	if err := d.setupCentral(ctx); err != nil {
		return nil, fmt.Errorf("central reports: %w", err)
	}
	res := &OrgResult{}
	members := make([]*orgMember, len(OrgMembers))
	errs := make([]error, len(OrgMembers))
	var wg sync.WaitGroup
	start := func(i int) error {
		if err := o.AddAccount(OrgMembers[i], d.ou); err != nil {
			return err
		}
		m, err := d.enroll(ctx, OrgMembers[i])
		if err != nil {
			return fmt.Errorf("enrolling %s: %w", OrgMembers[i], err)
		}
		members[i] = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.pipeline.Runner.RunUntilIdle(ctx, 500*time.Millisecond)
		}()
		return nil
	}
	last := len(OrgMembers) - 1
	for i := range last {
		if err := start(i); err != nil {
			return nil, err
		}
	}
	// The last account joins the OU while the others run: the StackSet's
	// automatic deployment enrolls it, and its pipeline starts.
	time.Sleep(200 * time.Millisecond)
	d.say("account %s joins OU %s: enrolled automatically", OrgMembers[last], d.ou)
	if err := start(last); err != nil {
		return nil, err
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.say("checking every account's objects and its reports in s3://%s", CentralReports)
	for i, m := range members {
		acct, err := d.check(ctx, m)
		if err != nil {
			return nil, err
		}
		acct.Late = i == last
		res.Accounts = append(res.Accounts, acct)
		res.Failures = append(res.Failures, acct.Jobs.Failures...)
		if acct.OnTarget != acct.Objects || acct.Objects == 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("account %s: %d of %d object versions on its target key", m.account, acct.OnTarget, acct.Objects))
		}
	}
	refused, err := d.crossRead(ctx, members[1], res.Accounts[0].Jobs)
	if err != nil {
		return nil, err
	}
	res.CrossReadRefused = refused
	if !refused {
		res.Failures = append(res.Failures, fmt.Sprintf("account %s read a report of %s", members[1].account, members[0].account))
	}
	if res.View, err = d.view(ctx); err != nil {
		return nil, err
	}
	res.Failures = append(res.Failures, checkView(res.View, res.Accounts)...)
	res.Elapsed = time.Since(began)
	return res, nil
}

// setupCentral makes the central report bucket and key in the management
// account, as the organization stack does: members write and read under
// reports/THEIR-ACCOUNT/ only (aws:PrincipalOrgID, ${aws:PrincipalAccount}),
// only under the central key, whose key policy lets the organization's
// principals use it.
func (d *orgDemo) setupCentral(ctx context.Context) error {
	cfg := d.rootConfig(OrgManagement)
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("s3rekey central reports")})
	if err != nil {
		return err
	}
	d.centralKey = aws.ToString(key.KeyMetadata.Arn)
	keyPolicy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
 {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"MembersUseThroughS3","Effect":"Allow","Principal":"*","Action":["kms:GenerateDataKey","kms:Encrypt","kms:Decrypt"],"Resource":"*",
  "Condition":{"StringEquals":{"aws:PrincipalOrgID":%q}}}]}`, OrgManagement, d.org.ID())
	if _, err := kms.NewFromConfig(cfg).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(d.centralKey), Policy: aws.String(keyPolicy)}); err != nil {
		return err
	}
	s3c := s3.NewFromConfig(cfg, emulator.PathStyle)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(CentralReports)}); err != nil {
		return err
	}
	bucketPolicy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
 {"Sid":"MembersWriteOwnReports","Effect":"Allow","Principal":"*","Action":["s3:PutObject","s3:GetObject"],
  "Resource":"arn:aws:s3:::%s/%s/${aws:PrincipalAccount}/*","Condition":{"StringEquals":{"aws:PrincipalOrgID":%q}}},
 {"Sid":"OnlyUnderTheCentralKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::%s/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":%q}}}]}`,
		CentralReports, orgReportsRoot, d.org.ID(), CentralReports, d.centralKey)
	_, err = s3c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(CentralReports), Policy: aws.String(bucketPolicy)})
	return err
}

// orgMember is one enrolled member account.
type orgMember struct {
	account, bucket, target string
	jobs                    jobs.Config
	pipeline                *pipeline.Pipeline
}

// check verifies one account: every version of its bucket on its target
// key, and its jobs and their central reports (CheckJobs, read with the
// account's own credentials).
func (d *orgDemo) check(ctx context.Context, m *orgMember) (OrgAccount, error) {
	emu := d.org.Account(m.account)
	acct := OrgAccount{ID: m.account}
	for _, v := range emu.Versions(m.bucket) {
		if v.DeleteMarker {
			continue
		}
		acct.Objects++
		if v.KMSKeyARN == m.target {
			acct.OnTarget++
		}
	}
	jc, err := checkJobsAs(ctx, emu, d.rootConfig(m.account), m.jobs, m.target)
	if err != nil {
		return acct, fmt.Errorf("account %s: %w", m.account, err)
	}
	acct.Jobs = jc
	for _, n := range jc.Rows {
		acct.Rows += n
	}
	return acct, nil
}

// crossRead has reader try one of owner's report objects: the bucket
// policy admits each account to its own prefix only.
func (d *orgDemo) crossRead(ctx context.Context, reader *orgMember, owner *JobCheck) (bool, error) {
	var manifest string
	for _, j := range owner.Jobs {
		if j.ReportManifest != "" {
			manifest = j.ReportManifest
			break
		}
	}
	bucket, key, ok := splitS3URL(manifest)
	if !ok {
		return false, nil // the account's check names its missing reports
	}
	_, err := s3.NewFromConfig(d.rootConfig(reader.account), emulator.PathStyle).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied", nil
}

func splitS3URL(u string) (bucket, key string, ok bool) {
	rest, found := bytes.CutPrefix([]byte(u), []byte("s3://"))
	if !found {
		return "", "", false
	}
	b, k, found := bytes.Cut(rest, []byte("/"))
	return string(b), string(k), found && len(b) > 0
}

// view reads the organization's jobs as "s3rekey jobs --org" does: the
// OU's accounts from Organizations, each one's deployment record and job
// records through its reader role.
func (d *orgDemo) view(ctx context.Context) (*orgview.View[orgview.Jobs], error) {
	cfg := d.rootConfig(OrgManagement)
	c := &orgview.Collector{Org: organizations.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg),
		Parameters: func(c aws.Config) orgview.GetParameterAPI { return ssm.NewFromConfig(c) },
		Base:       cfg, Selection: orgview.Selection{OUs: []string{d.ou}}}
	return orgview.Collect(ctx, c, func(ctx context.Context, dep orgview.Deployment) (orgview.Jobs, orgview.Finding, error) {
		list, err := (&jobs.Store{API: dynamodb.NewFromConfig(dep.Config), Table: dep.Record.JobsTable}).List(ctx, 100)
		if err != nil {
			return orgview.Jobs{}, orgview.Finding{}, err
		}
		v, f := orgview.SummarizeJobs(list, nil)
		return v, f, nil
	})
}

// checkView checks the organization view against what each account's
// own check found: a deployed row per member, its jobs those of the
// account, the totals their sum.
func checkView(v *orgview.View[orgview.Jobs], accounts []OrgAccount) []string {
	var fails []string
	rows := map[string]orgview.Row[orgview.Jobs]{}
	for _, r := range v.Rows {
		rows[r.Account] = r
	}
	if len(v.Rows) != len(accounts) {
		fails = append(fails, fmt.Sprintf("organization view: %d rows for %d accounts", len(v.Rows), len(accounts)))
	}
	var sum int
	for _, a := range accounts {
		r, ok := rows[a.ID]
		if !ok || r.State != orgview.StateDeployed || r.View == nil {
			fails = append(fails, fmt.Sprintf("organization view: account %s is %q (%s), want deployed", a.ID, r.State, r.Reason))
			continue
		}
		if r.View.Jobs != len(a.Jobs.Jobs) {
			fails = append(fails, fmt.Sprintf("organization view: account %s has %d jobs, its table %d", a.ID, r.View.Jobs, len(a.Jobs.Jobs)))
		}
		sum += r.View.Jobs
	}
	if total := orgview.Total(v); total.Jobs != sum {
		fails = append(fails, fmt.Sprintf("organization view: total %d jobs, the accounts' sum %d", total.Jobs, sum))
	}
	return fails
}

// orgPolicy is a member's policy: its bucket onto its own target key.
func orgPolicy(bucket, inventory, target string) (*policy.Policy, error) {
	doc, err := json.Marshal(map[string]any{
		"exclude": []any{map[string]any{"names": []string{inventory}}},
		"rules": []any{map[string]any{"name": "photos", "select": map[string]any{"names": []string{bucket}},
			"settings": map[string]any{"kmsKeyArn": target, "bucketKeyEnabled": true}}},
	})
	if err != nil {
		return nil, err
	}
	return policy.Parse(doc)
}

// putRecord publishes the member's deployment record, as its stack does.
func putRecord(ctx context.Context, cfg aws.Config, rec deployment.Record) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(deployment.DefaultParameterName),
		Type: ssmtypes.ParameterTypeString, Value: aws.String(string(doc)), Overwrite: aws.Bool(true)})
	return err
}

// seedMember writes the account's objects under its old key.
func seedMember(ctx context.Context, s3c *s3.Client, bucket, oldKey string, n int) error {
	for i := range n {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("%s%05d.jpg", orgObjectPrefix, i)),
			Body: bytes.NewReader([]byte("a photo")), ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(oldKey)}); err != nil {
			return err
		}
	}
	return nil
}
