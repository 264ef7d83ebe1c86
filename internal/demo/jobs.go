package demo

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Where the demo's job records and reports go.
const (
	JobsTable    = "s3rekey-jobs"
	ReportBucket = "demo-reports"
	ReportPrefix = "s3rekey-reports"
)

// CreateJobsTable makes the job table as the stack does: a string
// partition key pk and sort key sk, on demand, records expiring by TTL on
// "expires".
func CreateJobsTable(ctx context.Context, cfg aws.Config, name string) error {
	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddbtypes.ScalarAttributeTypeS}}}); err != nil {
		return fmt.Errorf("jobs table: %w", err)
	}
	_, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String("expires"), Enabled: aws.Bool(true)}})
	return err
}

// setupJobs makes the table, the report bucket and the report key.
func (d *demo) setupJobs(ctx context.Context) (err error) {
	d.jobs, err = SetupJobs(ctx, d.emu, JobsTable, ReportBucket)
	return err
}

// SetupJobs makes on emu what the stack makes for job records: the table,
// a report bucket and a report key.
func SetupJobs(ctx context.Context, emu *emulator.Emulator, table, reportBucket string) (jobs.Config, error) {
	cfg := clientConfig(emu.AWSConfig())
	if err := CreateJobsTable(ctx, cfg, table); err != nil {
		return jobs.Config{}, err
	}
	if _, err := s3.NewFromConfig(cfg, emulator.PathStyle).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(reportBucket)}); err != nil {
		return jobs.Config{}, err
	}
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("s3rekey job reports")})
	if err != nil {
		return jobs.Config{}, err
	}
	return jobs.Config{Table: table, ReportBucket: reportBucket, ReportPrefix: ReportPrefix, ReportKMSKeyARN: aws.ToString(key.KeyMetadata.Arn)}, nil
}

// JobsResources adds a jobs configuration's table, report location and
// report key to a deployment's resources, as the stack's would be.
func JobsResources(emu *emulator.Emulator, res permissions.Resources, c jobs.Config) permissions.Resources {
	if c.Table != "" {
		res.JobsTableARN = "arn:aws:dynamodb:" + emu.Region() + ":" + emu.Account() + ":table/" + c.Table
	}
	if c.ReportBucket != "" {
		res.ReportObjectsARN = "arn:aws:s3:::" + c.ReportBucket + "/" + strings.Trim(c.ReportPrefix+"/*", "/")
		res.ReportKeyARN = c.ReportKMSKeyARN
	}
	return res
}

// JobCheck is what the demo found of its backfill jobs.
type JobCheck struct {
	Jobs     []*jobs.Job
	Rows     map[string]int64 // report rows, by job
	Failures []string
	// Reported is every report row, by bucket/key@version.
	Reported map[string]jobs.Row
}

func (d *demo) checkJobs(ctx context.Context) (*JobCheck, error) {
	return CheckJobs(ctx, d.emu, d.jobs, d.target)
}

// CheckJobs reads every job and its report, and checks them against the
// objects: every backfill job is complete, its outcomes account for every
// row, its report lists as many rows as its counts say it should, and
// every object it lists is in the state its row says (not on the target
// key, or gone).
func CheckJobs(ctx context.Context, emu *emulator.Emulator, cfg jobs.Config, target string) (*JobCheck, error) {
	return checkJobsAs(ctx, emu, clientConfig(emu.AWSConfig()), cfg, target)
}

// checkJobsAs is CheckJobs reading the job records and reports with
// admin: in an organization, the account's own credentials (its reports
// are in the central bucket, under its prefix).
func checkJobsAs(ctx context.Context, emu *emulator.Emulator, admin aws.Config, cfg jobs.Config, target string) (*JobCheck, error) {
	store := &jobs.Store{API: dynamodb.NewFromConfig(admin), Table: cfg.Table}
	s3c := s3.NewFromConfig(admin, emulator.PathStyle)
	list, err := store.List(ctx, 100)
	if err != nil {
		return nil, err
	}
	jc := &JobCheck{Rows: map[string]int64{}, Reported: map[string]jobs.Row{}}
	fail := func(format string, args ...any) { jc.Failures = append(jc.Failures, fmt.Sprintf(format, args...)) }
	reports := cfg.Reports(nil)
	for _, j := range list {
		jc.Jobs = append(jc.Jobs, j)
		if j.Kind == jobs.KindUploads {
			continue
		}
		var sum, listed int64
		for k, n := range j.Outcomes {
			sum += n
			if reports.Wants(outcomeOf(k)) {
				listed += n
			}
		}
		switch {
		case j.State != jobs.StateComplete && j.State != jobs.StateCompleteWithFailures:
			fail("job %s is %s (%d of %d objects done)", j.ID, j.State, j.Done, j.Planned)
			continue
		case sum != j.Rows || j.Rows != j.RowsExpected:
			fail("job %s: %d outcomes for %d rows (the files had %d)", j.ID, sum, j.Rows, j.RowsExpected)
		case j.ReportManifest == "":
			fail("job %s is complete without a report manifest", j.ID)
			continue
		}
		rows, err := jobs.ReadReport(ctx, s3c, j.ReportManifest)
		if err != nil {
			return nil, err
		}
		jc.Rows[j.ID] = int64(len(rows))
		if int64(len(rows)) != listed {
			fail("job %s: report lists %d objects, its counts say %d", j.ID, len(rows), listed)
		}
		for _, r := range rows {
			checkRow(emu, target, j.ID, r, fail)
			jc.Reported[r.Bucket+"/"+r.Key+"@"+r.VersionID] = r
		}
	}
	return jc, nil
}

// checkRow checks one report row against the object it names.
func checkRow(emu *emulator.Emulator, target, jobID string, r jobs.Row, fail func(string, ...any)) {
	st, ok := emu.Inspect(r.Bucket, r.Key, r.VersionID)
	switch {
	case r.Outcome.Status == rekey.Gone:
		if ok && !st.DeleteMarker {
			fail("job %s: %s/%s@%s reported gone but present", jobID, r.Bucket, r.Key, r.VersionID)
		}
	case !ok:
		fail("job %s: %s/%s@%s reported %s but missing", jobID, r.Bucket, r.Key, r.VersionID, r.Outcome)
	case r.Outcome.Status == rekey.Updated || r.Outcome.Status == rekey.Copied || r.Outcome.Status == rekey.Compliant:
		// Listed only by a report of every object (jobs.Config.ReportAll).
		if st.Encryption != rekey.EncKMS || st.KMSKeyARN != target {
			fail("job %s: %s/%s@%s reported %s but is not on the target key", jobID, r.Bucket, r.Key, r.VersionID, r.Outcome)
		}
	case st.Encryption == rekey.EncKMS && st.KMSKeyARN == target && st.BucketKey:
		fail("job %s: %s/%s@%s reported %s but is on the target key", jobID, r.Bucket, r.Key, r.VersionID, r.Outcome)
	}
}

func outcomeOf(key string) rekey.Outcome {
	status, reason, _ := strings.Cut(key, ": ")
	return rekey.Outcome{Status: rekey.Status(status), Reason: reason}
}

// jobProgress is the backfill jobs' state for a progress line.
func (d *demo) jobProgress() string {
	list, err := (&jobs.Store{API: dynamodb.NewFromConfig(clientConfig(d.emu.AWSConfig())), Table: d.jobs.Table}).List(context.Background(), 10)
	if err != nil {
		return ""
	}
	var parts []string
	for _, j := range list {
		if j.Kind != jobs.KindUploads {
			parts = append(parts, fmt.Sprintf("job %s %s %.0f%%", j.ID, j.State, j.Percent()))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}
