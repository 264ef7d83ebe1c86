package demo

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/functionconf"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// The buckets of the end-to-end scenario.
const (
	e2eData      = "e2e-data"      // versioned after a null version was written; versions: all, by inventory
	e2eLocked    = "e2e-locked"    // Object Lock; legal holds and retention, by inventory, events and a listing
	e2ePlain     = "e2e-plain"     // unversioned; events (a deleted object, '+' keys) and a listing
	e2eInventory = "e2e-inventory" // inventory destination
	e2eLegacy    = "e2e-legacy"    // opted in to copy unencrypted objects in place; events
	plusKey      = "c++/a+b c.txt" // a key whose EventBridge spelling is ambiguous
)

// scenario is a small deployment on its own emulator with one object for
// every case the AWS documentation makes the pipeline handle differently
// from a naive reading.
type scenario struct {
	emu    *emulator.Emulator
	s3     *s3.Client
	pol    *policy.Policy
	queues pipeline.Queues
	target string
	oldKey string
	res    permissions.Resources
	jobs   jobs.Config
}

func newScenario(t *testing.T, rawEventBridgeKeys bool) *scenario {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	emu, err := emulator.Start(ctx, emulator.Options{EventBridgeRawKeys: rawEventBridgeKeys, EventBridgeRules: []emulator.EventBridgeRule{
		{Bucket: e2eData, Queue: "e2e-work"}, {Bucket: e2eLocked, Queue: "e2e-work"}, {Bucket: e2ePlain, Queue: "e2e-work"},
		{Bucket: e2eLegacy, Queue: "e2e-work"},
		{Bucket: e2eInventory, KeySuffix: "manifest.checksum", Queue: "e2e-control"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	admin := clientConfig(emu.AWSConfig())
	sc := &scenario{emu: emu, s3: s3.NewFromConfig(admin, emulator.PathStyle)}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	kmsc := kms.NewFromConfig(admin)
	old, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{})
	must(nil, err)
	target, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{})
	must(nil, err)
	sc.target, sc.oldKey = aws.ToString(target.KeyMetadata.Arn), aws.ToString(old.KeyMetadata.Arn)

	sqsc := sqs.NewFromConfig(admin)
	queue := func(name string, attrs map[string]string) string {
		out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		must(nil, err)
		return aws.ToString(out.QueueUrl)
	}
	// Short visibility and few receives, so that a message a function
	// cannot finish lands on its DLQ within the test; the visibility counts
	// the batching window too, as the stack's does ("If you're using a
	// batch window greater than 0 seconds, you must account for the
	// increased processing time in your queue's visibility timeout":
	// Lambda developer guide, services-sqs-configure), or a message would
	// come back while its batch is still gathering.
	redrive := func(dlq string) map[string]string {
		return map[string]string{"VisibilityTimeout": strconv.Itoa(5 + functionconf.Encrypt.BatchingWindowSeconds),
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:%s:%s:%s","maxReceiveCount":3}`, emu.Region(), emu.Account(), dlq)}
	}
	sc.queues.WorkDLQ, sc.queues.ControlDLQ = queue("e2e-work-dlq", nil), queue("e2e-control-dlq", nil)
	sc.queues.Work, sc.queues.Control = queue("e2e-work", redrive("e2e-work-dlq")), queue("e2e-control", redrive("e2e-control-dlq"))

	for _, b := range []struct {
		name string
		lock bool
	}{{e2eData, false}, {e2eLocked, true}, {e2ePlain, false}, {e2eInventory, false}, {e2eLegacy, false}} {
		must(sc.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.name), ObjectLockEnabledForBucket: aws.Bool(b.lock)}))
	}
	sc.pol, err = policy.Parse([]byte(fmt.Sprintf(`{"buckets":{
		%q:{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"},
		%q:{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"},
		%q:{"kmsKeyArn":%q,"bucketKeyEnabled":true},
		%q:{"kmsKeyArn":%q,"bucketKeyEnabled":true,"unsupportedSources":{"notEncrypted":"copy"}}}}`,
		e2eData, sc.target, e2eLocked, sc.target, e2ePlain, sc.target, e2eLegacy, sc.target)))
	must(nil, err)
	sc.jobs, err = SetupJobs(ctx, emu, "e2e-jobs", "e2e-reports")
	must(nil, err)
	sc.res = JobsResources(emu, EmulatorResources(emu, sc.pol, e2eInventory, sc.queues), sc.jobs)

	put := func(bucket, key string, edit func(*s3.PutObjectInput)) {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("body of " + key)}
		if edit != nil {
			edit(in)
		}
		must(sc.s3.PutObject(ctx, in))
	}
	eventBridge := func(bucket string) {
		must(sc.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(bucket),
			NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}))
	}
	legalHold := func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn }
	retention := func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(time.Now().Add(time.Hour))
	}

	// The backfill: a null version written before versioning, then a
	// current version over it; an SSE-KMS noncurrent version under an old
	// key; a legal hold the inventory reports as "On".
	put(e2eData, "legacy/null.txt", nil)
	must(sc.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(e2eData),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
	put(e2eData, "legacy/null.txt", nil)
	put(e2eData, "kms/doc.txt", func(in *s3.PutObjectInput) {
		in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, old.KeyMetadata.Arn, aws.Bool(false)
	})
	put(e2eData, "kms/doc.txt", nil)
	put(e2eLocked, "held/inventory.txt", legalHold)
	eventBridge(e2eInventory)
	must(emu.PublishInventory(emulator.InventoryOptions{SourceBucket: e2eData, DestinationBucket: e2eInventory, Format: "CSV"}))
	must(emu.PublishInventory(emulator.InventoryOptions{SourceBucket: e2eLocked, DestinationBucket: e2eInventory, Format: "Parquet", CurrentOnly: true}))

	// Enforcement: new uploads announced by EventBridge. One is deleted
	// before its event is processed; locked ones are read by HEAD.
	eventBridge(e2eLocked)
	eventBridge(e2ePlain)
	put(e2ePlain, "tmp/deleted.txt", nil)
	must(sc.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e2ePlain), Key: aws.String("tmp/deleted.txt")}))
	put(e2ePlain, plusKey, nil)
	// Unencrypted uploads (as S3 stored them before 2023) in the bucket
	// opted in to copies: one small, one copied in parts.
	eventBridge(e2eLegacy)
	for key, size := range map[string]int{"legacy/tagged.txt": 1 << 10, "legacy/big.bin": 6 << 20} {
		must(sc.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e2eLegacy), Key: aws.String(key), Tagging: aws.String("team=a"),
			Body: strings.NewReader(strings.Repeat("x", size))}, emulator.LegacyUnencrypted))
	}
	// An annotation, which CopyObject keeps under its default directive
	// (and which needs s3:GetObjectAnnotation and s3:PutObjectAnnotation).
	must(sc.s3.PutObjectAnnotation(ctx, &s3.PutObjectAnnotationInput{Bucket: aws.String(e2eLegacy), Key: aws.String("legacy/tagged.txt"),
		AnnotationName: aws.String("review"), AnnotationPayload: strings.NewReader("ok")}))
	put(e2eLocked, "held/event.txt", legalHold)
	put(e2eLocked, "retained/event.txt", retention)

	// Listings (the planner's other source) and a poison message on each
	// queue, which must reach its DLQ.
	for body, url := range map[string]string{
		`{"type":"listing","bucket":"` + e2ePlain + `"}`:                  sc.queues.Control,
		`{"type":"listing","bucket":"` + e2eLocked + `","versions":true}`: sc.queues.Control,
		`{"type":"teleport"}`:      sc.queues.Control,
		`{"this is":"not a task"}`: sc.queues.Work,
	} {
		must(sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}))
	}
	return sc
}

// run runs the pipeline under encrypt's and planner's statements, with
// the encrypt role's S3 session expired for its first `expired` requests,
// and returns what went wrong, if anything.
func (sc *scenario) run(t *testing.T, encrypt, planner []permissions.Statement, expired int, limit time.Duration) []string {
	t.Helper()
	roles, err := BindRoles(sc.emu, encrypt, planner)
	if err != nil {
		t.Fatal(err)
	}
	if expired > 0 {
		// Expired credentials mid-run: HeadObject answers a bare 400, and
		// nothing may be skipped for it.
		sc.emu.ExpireCredentials(EncryptAccessKey, "s3", expired)
	}
	p := pipeline.New(clientConfig(sc.emu.AWSConfig()), sc.pol, sc.queues, pipeline.Options{EncryptAWS: &roles.Encrypt, PlannerAWS: &roles.Planner,
		MultipartCopyThreshold: 5 << 20, CopyPartSize: 5 << 20, Jobs: sc.jobs})
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var problems []string
	if err := p.Runner.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
		problems = append(problems, "run: "+err.Error())
	}
	return append(problems, sc.check(t, p.Tally.Snapshot(), expired)...)
}

// check compares the end state with what the AWS documentation says it
// must be.
func (sc *scenario) check(t *testing.T, tally pipeline.Snapshot, expired int) []string {
	t.Helper()
	var problems []string
	onTarget := func(st emulator.ObjectState) bool {
		return st.Encryption == "SSE-KMS" && st.KMSKeyARN == sc.target && st.BucketKey
	}
	versions := sc.emu.Versions(e2eData)
	if len(versions) != 4 {
		problems = append(problems, fmt.Sprintf("%s holds %d versions, want 4", e2eData, len(versions)))
	}
	for _, v := range versions {
		if !onTarget(v) {
			problems = append(problems, fmt.Sprintf("%s/%s@%s ends %s %s: every version, the null one included, must be on the target",
				e2eData, v.Key, v.VersionID, v.Encryption, v.KMSKeyARN))
		}
	}
	for _, key := range []string{"legacy/tagged.txt", "legacy/big.bin"} {
		if st, ok := sc.emu.Inspect(e2eLegacy, key, ""); !ok || !onTarget(st) || st.Tags["team"] != "a" {
			problems = append(problems, fmt.Sprintf("%s/%s ends %s %s tags %v: unencrypted objects of an opted-in bucket are copied onto the target, tags kept",
				e2eLegacy, key, st.Encryption, st.KMSKeyARN, st.Tags))
		}
	}
	if ann, err := sc.s3.ListObjectAnnotations(context.Background(), &s3.ListObjectAnnotationsInput{Bucket: aws.String(e2eLegacy),
		Key: aws.String("legacy/tagged.txt")}); err != nil || aws.ToInt32(ann.AnnotationCount) != 1 {
		problems = append(problems, fmt.Sprintf("%s/legacy/tagged.txt's annotation after its copy: %v %v", e2eLegacy, ann, err))
	}
	if tally.Outcomes["copied"] != 2 {
		problems = append(problems, fmt.Sprintf("%d objects copied, want 2", tally.Outcomes["copied"]))
	}
	if st, ok := sc.emu.Inspect(e2ePlain, plusKey, ""); !ok || !onTarget(st) {
		problems = append(problems, fmt.Sprintf("%s/%s (EventBridge key with '+') ends %s", e2ePlain, plusKey, st.Encryption))
	}
	for _, v := range sc.emu.Versions(e2eLocked) {
		if v.Encryption != "SSE-S3" {
			problems = append(problems, fmt.Sprintf("locked %s ends %s", v.Key, v.Encryption))
		}
	}
	// A locked object needs no UpdateObjectEncryption at all: the
	// inventory's "On" and HeadObject's lock headers both say so. Only a
	// HEAD that met the expired session (a bare 400, which proves nothing)
	// is followed by an update, which S3 refuses for the lock.
	if n := sc.emu.CountOf("s3", "UpdateObjectEncryption", e2eLocked); n > int64(expired) {
		problems = append(problems, fmt.Sprintf("%d UpdateObjectEncryption requests to locked objects, want none (but for %d expired HEADs)", n, expired))
	}
	for label, n := range tally.Outcomes {
		if strings.HasPrefix(label, "failed") || label == "skipped: sse-c" || label == "skipped: unreadable" {
			problems = append(problems, fmt.Sprintf("%d objects ended %s", n, label))
		}
	}
	if tally.Outcomes["gone"] == 0 {
		problems = append(problems, "the object deleted before its event was processed did not end gone")
	}
	admin := sqs.NewFromConfig(clientConfig(sc.emu.AWSConfig()))
	for _, q := range []struct{ name, url string }{{"work DLQ", sc.queues.WorkDLQ}, {"control DLQ", sc.queues.ControlDLQ}} {
		out, err := admin.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
		if err != nil {
			t.Fatal(err)
		}
		if n := out.Attributes["ApproximateNumberOfMessages"]; n != "1" {
			problems = append(problems, fmt.Sprintf("the %s holds %s messages, want only its poison message", q.name, n))
			continue
		}
		// Put there by the function with its reason, not by SQS's
		// redrive after failed receives.
		msg, err := admin.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MessageAttributeNames: []string{"All"},
			VisibilityTimeout: 0})
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Messages) != 1 || msg.Messages[0].MessageAttributes["s3rekey.outcome"].StringValue == nil {
			problems = append(problems, fmt.Sprintf("the %s's poison message was not dead-lettered by the function with its reason", q.name))
		}
	}
	// Two inventories and two listings: four backfill jobs, each complete,
	// exact, and its report true to the objects.
	jc, err := CheckJobs(context.Background(), sc.emu, sc.jobs, sc.target)
	if err != nil {
		problems = append(problems, "jobs: "+err.Error())
	} else {
		problems = append(problems, jc.Failures...)
		backfills := 0
		for _, j := range jc.Jobs {
			if j.Kind != jobs.KindUploads {
				backfills++
			}
		}
		if backfills != 4 {
			problems = append(problems, fmt.Sprintf("%d backfill jobs, want 4 (two inventories, two listings)", backfills))
		}
	}
	sort.Strings(problems)
	return problems
}

// TestEndToEndUnderDeployedPermissions runs the pipeline under exactly the
// statements the stack deploys (internal/permissions) on every case the
// AWS documentation makes special, once for each reading of EventBridge's
// undocumented key encoding.
func TestEndToEndUnderDeployedPermissions(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw EventBridge keys %v", raw), func(t *testing.T) {
			t.Parallel()
			sc := newScenario(t, raw)
			if !raw {
				// The other source-key option: an explicit list.
				sc.res.SourceKeyARNs = []string{sc.oldKey}
			}
			if problems := sc.run(t, permissions.Encrypt(sc.res), permissions.Planner(sc.res), 3, time.Minute); len(problems) > 0 {
				t.Errorf("under the deployed permissions:\n  %s", strings.Join(problems, "\n  "))
			}
		})
	}
}

// TestEveryPermissionIsNeeded removes each action of each function's
// statements in turn: the end-to-end run must then go wrong. An action
// whose removal changes nothing is not needed and must not be deployed.
func TestEveryPermissionIsNeeded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the end-to-end scenario once per action")
	}
	res := permissions.Resources{CopyBuckets: []string{e2eLegacy}, JobsTableARN: "t", ReportObjectsARN: "o", ReportKeyARN: "k"}
	for fn, stmts := range map[string]func(permissions.Resources) []permissions.Statement{"encrypt": permissions.Encrypt, "planner": permissions.Planner} {
		for _, st := range stmts(res) {
			for _, action := range st.Actions {
				if action == "s3:AbortMultipartUpload" {
					// Used only when a multipart copy fails, which the run does
					// not provoke; TestMultipartCopyAbortsOnFailure shows the
					// call and that it needs the action.
					continue
				}
				if st.Sid == "CommitJobs" && action == "dynamodb:PutItem" {
					// Used by the encrypt function only for a new rolling uploads
					// job's index entry (a backfill's commit needs none) and the
					// budgets' heartbeats; TestUploadsJobIndexNeedsPutItem shows
					// the call and that it needs the action.
					continue
				}
				if (st.Sid == "WriteReports" && action == "s3:GetObject") || (st.Sid == "ReportKey" && action == "kms:Decrypt") {
					// Used only when a duplicate delivery of a finished job's task
					// reads its manifest back (TestRedriveReopensJobs runs that
					// path).
					continue
				}
				t.Run(fn+" "+st.Sid+" "+action, func(t *testing.T) {
					t.Parallel()
					sc := newScenario(t, false)
					// With an explicit source-key list; the account-wide
					// default also covers the target key's kms:Decrypt.
					sc.res.SourceKeyARNs = []string{sc.oldKey}
					enc, plan := permissions.Encrypt(sc.res), permissions.Planner(sc.res)
					if fn == "encrypt" {
						enc = permissions.Without(enc, st.Sid, action)
					} else {
						plan = permissions.Without(plan, st.Sid, action)
					}
					if problems := sc.run(t, enc, plan, 0, 20*time.Second); len(problems) == 0 {
						t.Errorf("%s runs as well without %s (statement %s): the action is not needed", fn, action, st.Sid)
					}
				})
			}
		}
	}
}

// Key rotation by alias: objects on key A under alias/app-data, the alias
// repointed to key B, a backfill, and every object ends on B, with the
// functions under their deployed permissions (target keys granted through
// kms:ResourceAliases, so the repointed alias needs no new grant).
func TestKeyRotationByAlias(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emu, admin := startEmulator(ctx, t)
	kmsc, s3c, sqsc := kms.NewFromConfig(admin), s3.NewFromConfig(admin, emulator.PathStyle), sqs.NewFromConfig(admin)
	key := func() string {
		out, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	a, b := key(), key()
	if _, err := kmsc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app-data"), TargetKeyId: aws.String(a)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("rot-data")}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		in := &s3.PutObjectInput{Bucket: aws.String("rot-data"), Key: aws.String(fmt.Sprintf("obj-%d", i)), Body: strings.NewReader("x")}
		if i%2 == 0 {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(a)
		}
		if _, err := s3c.PutObject(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	q := createQueues(ctx, t, sqsc, "rot")
	pol, err := policy.Parse([]byte(`{"buckets":{"rot-data":{"kmsKeyArn":"alias/app-data","bucketKeyEnabled":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	res := EmulatorResources(emu, pol, "rot-inventory", q)
	roles, err := BindRoles(emu, permissions.Encrypt(res), permissions.Planner(res))
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(admin, pol, q, pipeline.Options{EncryptAWS: &roles.Encrypt, PlannerAWS: &roles.Planner, AliasTTL: 50 * time.Millisecond})
	backfill := func(want string) {
		t.Helper()
		if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.Control),
			MessageBody: aws.String(`{"type":"listing","bucket":"rot-data"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := p.Runner.RunUntilIdle(ctx, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		for _, v := range emu.Versions("rot-data") {
			if v.Encryption != "SSE-KMS" || v.KMSKeyARN != want || !v.BucketKey {
				t.Errorf("%s ends %s %s, want the key alias/app-data points at, %s", v.Key, v.Encryption, v.KMSKeyARN, want)
			}
		}
	}
	backfill(a)
	if _, err := kmsc.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app-data"), TargetKeyId: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the resolution's TTL
	backfill(b)
	if outcomes := p.Tally.Snapshot().Outcomes; outcomes["failed: access-denied"] > 0 {
		t.Errorf("outcomes %v", outcomes)
	}
}
