// Package permissions says, in plain Go, what each s3rekey function may do
// in AWS. It is the one source of the functions' permissions: the CDK
// stack renders these statements into the functions' roles, and the tests,
// the fault matrix and the demo bind the same statements to the functions'
// credentials in the emulator, so that what is tested is what is deployed.
//
// Every action is here because a function's call needs it; a test removes
// each one in turn and sees the end-to-end run fail.
package permissions

import (
	"encoding/json"
	"slices"
)

// Statement is one statement of an identity policy: an Allow, or with
// Effect Deny an explicit Deny, which wins over any Allow (IAM User Guide,
// reference_policies_evaluation-logic.md).
type Statement struct {
	Sid       string
	Effect    string // "" is Allow
	Actions   []string
	Resources []string
	// Condition: operator → condition key → values.
	Condition map[string]map[string][]string
}

// Resources are the ARNs and names the statements are about. In the stack
// they are CloudFormation tokens; in tests, the emulator's ARNs.
type Resources struct {
	Partition, Region, Account string
	// ManagedBuckets are the bucket names, or IAM name patterns (* and ?),
	// the policy can select; with AccountWideBuckets, every bucket of the
	// account instead (a rule selects all buckets or by tag, or the names
	// are too many for IAM's policy size limits).
	ManagedBuckets     []string
	AccountWideBuckets bool
	// ObjectsInScope are the objects the policy's prefixes put in scope,
	// and CopyObjectsInScope those of the settings that copy, as IAM
	// patterns over "bucket/key" (policy.ObjectScope); empty: every object
	// of ManagedBuckets (CopyBuckets).
	ObjectsInScope, CopyObjectsInScope []string
	// ExcludedObjects ("bucket/prefix*") are explicitly denied the encrypt
	// function's object actions: excluded prefixes of exactly named
	// buckets.
	ExcludedObjects []string
	// CopyBuckets are the managed buckets opted in to copy in place (names
	// or patterns), or with AccountWideCopies every bucket of the account.
	CopyBuckets       []string
	AccountWideCopies bool
	// ReadsBucketTags: a tag selector reads bucket tags (GetBucketTagging).
	ReadsBucketTags    bool
	InventoryBucketARN string
	TargetKeyARNs      []string
	// TargetKeyAliases are the aliases (alias/NAME) target keys are named
	// by: granted on whichever key the alias points at, through
	// kms:ResourceAliases, so that repointing the alias needs no redeploy.
	TargetKeyAliases []string
	// TrustByTag: the policy trusts the keys its aliases resolve to by a
	// tag (trustedKeys.tag), which the encrypt function reads.
	TrustByTag bool
	// SourceKeyARNs are the keys objects may be under today. Empty means
	// any key of the account, used through S3 of the region only.
	SourceKeyARNs                                            []string
	WorkQueueARN, WorkDLQARN, ControlQueueARN, ControlDLQARN string
	// UploadsQueueARN and UploadsDLQARN are the uploads queue and its DLQ
	// (empty for a deployment whose uploads share the work queue).
	UploadsQueueARN, UploadsDLQARN string
	// JobsTableARN is the job records' table; ReportObjectsARN the report
	// location's objects (arn:…:s3:::bucket/prefix/*), ReportKeyARN the
	// key reports are encrypted under.
	JobsTableARN, ReportObjectsARN, ReportKeyARN string
	// ReportRegion is the report bucket's region when it is not the
	// function's (an organization's central bucket): S3 of that region
	// uses the report key.
	ReportRegion string
}

// encryptSends are the queues the encrypt function sends follow-ups to:
// each path's own queue and DLQ (an upload's retries stay on the uploads
// queue).
func (r Resources) encryptSends() []string {
	out := []string{r.WorkQueueARN, r.WorkDLQARN}
	if r.UploadsQueueARN != "" {
		out = append(out, r.UploadsQueueARN, r.UploadsDLQARN)
	}
	return out
}

func (r Resources) bucketARNs(suffix string) []string {
	if r.AccountWideBuckets {
		return []string{"arn:" + r.Partition + ":s3:::*" + suffix}
	}
	return r.arns(r.ManagedBuckets, suffix)
}

func (r Resources) copyARNs(suffix string) []string {
	if r.AccountWideCopies {
		return []string{"arn:" + r.Partition + ":s3:::*" + suffix}
	}
	return r.arns(r.CopyBuckets, suffix)
}

// inAccount limits an account-wide bucket grant to the account's own
// buckets (aws:ResourceAccount, a global condition key S3 supports).
func (r Resources) inAccount(accountWide bool) map[string]map[string][]string {
	if !accountWide {
		return nil
	}
	return map[string]map[string][]string{"StringEquals": {"aws:ResourceAccount": {r.Account}}}
}

// objectARNs are the managed objects in scope.
func (r Resources) objectARNs() []string {
	if len(r.ObjectsInScope) == 0 {
		return r.bucketARNs("/*")
	}
	return r.arns(r.ObjectsInScope, "")
}

// copyObjectARNs are the objects in scope of the settings that copy.
func (r Resources) copyObjectARNs() []string {
	if len(r.CopyObjectsInScope) == 0 {
		return r.copyARNs("/*")
	}
	return r.arns(r.CopyObjectsInScope, "")
}

func (r Resources) arns(buckets []string, suffix string) []string {
	out := make([]string, len(buckets))
	for i, b := range buckets {
		out[i] = "arn:" + r.Partition + ":s3:::" + b + suffix
	}
	return out
}

// viaS3 restricts KMS permissions to the calls S3 makes on the function's
// behalf: the functions never call KMS themselves.
func (r Resources) viaS3() map[string]map[string][]string {
	return map[string]map[string][]string{"StringEquals": {"kms:ViaService": {"s3." + r.Region + ".amazonaws.com"}}}
}

func (r Resources) anyKey() string {
	return "arn:" + r.Partition + ":kms:" + r.Region + ":" + r.Account + ":key/*"
}

// Consume is what reading a queue needs, for Lambda's event source mapping
// (and the local loop that stands in for it): receive, delete, and the
// queue's attributes.
func consume(sid, queueARN string) Statement {
	return Statement{Sid: sid, Actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}, Resources: []string{queueARN}}
}

// Encrypt is the encrypt function's permissions.
func Encrypt(r Resources) []Statement {
	out := []Statement{
		// HeadObject (s3:GetObject, s3:GetObjectVersion for a version) and
		// the Object Lock headers it shows only with the two lock reads
		// (HeadObject, Permissions). The function never reads object data.
		{Sid: "ReadObjectState", Actions: []string{"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold"},
			Resources: r.objectARNs(), Condition: r.inAccount(r.AccountWideBuckets)},
		// UpdateObjectEncryption, Permissions.
		{Sid: "UpdateObjectEncryption", Actions: []string{"s3:PutObject", "s3:UpdateObjectEncryption"}, Resources: r.objectARNs(),
			Condition: r.inAccount(r.AccountWideBuckets)},
		// Without s3:ListBucket, HeadObject of a deleted object answers 403,
		// and a deleted object would be dead-lettered as access denied.
		{Sid: "MissingObjectsAnswer404", Actions: []string{"s3:ListBucket"}, Resources: r.bucketARNs(""), Condition: r.inAccount(r.AccountWideBuckets)},
	}
	out = append(out, r.bucketTags()...)
	targetActions := []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt*"}
	if len(r.TargetKeyARNs) > 0 {
		out = append(out, Statement{Sid: "TargetKeys", Actions: targetActions, Resources: slices.Clone(r.TargetKeyARNs), Condition: r.viaS3()},
			// DescribeKey reads each target's key state at cold start and every
			// few minutes after (internal/keyalias): a disabled target stops
			// the function before its first object.
			Statement{Sid: "CheckTargetKeys", Actions: []string{"kms:DescribeKey"}, Resources: slices.Clone(r.TargetKeyARNs)})
	}
	if len(r.TargetKeyAliases) > 0 {
		byAlias := r.viaS3()
		byAlias["ForAnyValue:StringEquals"] = map[string][]string{"kms:ResourceAliases": slices.Clone(r.TargetKeyAliases)}
		out = append(out,
			Statement{Sid: "TargetKeysByAlias", Actions: targetActions, Resources: []string{r.anyKey()}, Condition: byAlias},
			// DescribeKey resolves the alias, at cold start and every few
			// minutes after (internal/keyalias); ListResourceTags reads the
			// tag a policy's trustedKeys.tag requires of the key.
			Statement{Sid: "ResolveAliases", Actions: r.resolveActions(), Resources: []string{r.anyKey()},
				Condition: map[string]map[string][]string{"ForAnyValue:StringEquals": {"kms:ResourceAliases": slices.Clone(r.TargetKeyAliases)}}})
	}
	source := Statement{Sid: "SourceKeys", Actions: []string{"kms:Decrypt"}, Resources: slices.Clone(r.SourceKeyARNs), Condition: r.viaS3()}
	if len(source.Resources) == 0 {
		source.Resources = []string{r.anyKey()}
		source.Condition["StringEquals"]["kms:CallerAccount"] = []string{r.Account}
	}
	if len(r.CopyBuckets) > 0 || r.AccountWideCopies {
		out = append(out,
			// CopyObject with the tagging and annotation directives COPY
			// reads and writes tags and annotations (API_CopyObject); a
			// multipart copy reads tags, lists annotations (an object
			// with any is skipped) and aborts on failure.
			Statement{Sid: "CopyInPlace", Actions: []string{"s3:GetObjectTagging", "s3:PutObjectTagging", "s3:AbortMultipartUpload",
				"s3:GetObjectAnnotation", "s3:PutObjectAnnotation", "s3:ListObjectAnnotations"},
				Resources: r.copyObjectARNs(), Condition: r.inAccount(r.AccountWideCopies)},
			// A copy drops ACL grants: copies go only to buckets whose
			// Object Ownership says ACLs are disabled.
			Statement{Sid: "CopyOnlyWithoutACLs", Actions: []string{"s3:GetBucketOwnershipControls"}, Resources: r.copyARNs(""),
				Condition: r.inAccount(r.AccountWideCopies)})
	}
	if deny, ok := r.denyExcluded(out); ok {
		out = append(out, deny)
	}
	out = append(out, source,
		Statement{Sid: "RetryAndDeadLetter", Actions: []string{"sqs:SendMessage"}, Resources: r.encryptSends()},
		consume("ConsumeWorkQueue", r.WorkQueueARN))
	if r.UploadsQueueARN != "" {
		out = append(out, consume("ConsumeUploadsQueue", r.UploadsQueueARN))
	}
	if r.JobsTableARN != "" {
		// A claim and the signing key are UpdateItem; a batch's commit is
		// one TransactWriteItems of Updates (task records, counter shards)
		// and a ConditionCheck of each job's record (a closed job takes no
		// commits); a follow-up's parent and the completion check are
		// Queries; the rolling uploads job is UpdateItem and PutItem;
		// completion UpdateItems the record. (Developer Guide, "Using IAM
		// with DynamoDB transactions".)
		out = append(out, Statement{Sid: "CommitJobs", Actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
			"dynamodb:ConditionCheckItem"},
			Resources: []string{r.JobsTableARN}})
	}
	if r.ReportObjectsARN != "" {
		// Report parts are written; a finished job's manifest is read back
		// only when a duplicate delivery checks that it lists what the job
		// counts.
		out = append(out, Statement{Sid: "WriteReports", Actions: []string{"s3:PutObject", "s3:GetObject"}, Resources: []string{r.ReportObjectsARN}},
			reportKey(r, "kms:GenerateDataKey", "kms:Decrypt"))
	}
	return out
}

// reportKey lets S3 use the report key on the function's behalf: a write
// under SSE-KMS with a bucket key needs GenerateDataKey, a read Decrypt.
func reportKey(r Resources, actions ...string) Statement {
	via := r.viaS3()
	if r.ReportRegion != "" {
		via["StringEquals"]["kms:ViaService"] = []string{"s3." + r.ReportRegion + ".amazonaws.com"}
	}
	return Statement{Sid: "ReportKey", Actions: actions, Resources: []string{r.ReportKeyARN}, Condition: via}
}

// Planner is the planner function's permissions.
func Planner(r Resources) []Statement {
	out := []Statement{
		{Sid: "ReadInventoryReports", Actions: []string{"s3:GetObject"}, Resources: []string{r.InventoryBucketARN + "/*"}},
		{Sid: "ListManagedBuckets", Actions: []string{"s3:ListBucket", "s3:ListBucketVersions"}, Resources: r.bucketARNs(""),
			Condition: r.inAccount(r.AccountWideBuckets)},
		{Sid: "SendWork", Actions: []string{"sqs:SendMessage"}, Resources: []string{r.WorkQueueARN, r.ControlQueueARN, r.ControlDLQARN}},
		consume("ConsumeControlQueue", r.ControlQueueARN),
	}
	out = append(out, r.bucketTags()...)
	if r.JobsTableARN != "" {
		// Begin: UpdateItem of the job's record, PutItem of its index
		// entry; a Query of the record drops the messages of a closed job.
		out = append(out, Statement{Sid: "StartJobs", Actions: []string{"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"},
			Resources: []string{r.JobsTableARN}})
	}
	return out
}

// bucketTags lets a function read the tags its policy's tag selectors
// test (GetBucketTagging needs s3:GetBucketTagging).
func (r Resources) bucketTags() []Statement {
	if !r.ReadsBucketTags {
		return nil
	}
	return []Statement{{Sid: "ReadBucketTags", Actions: []string{"s3:GetBucketTagging"}, Resources: r.bucketARNs(""),
		Condition: r.inAccount(r.AccountWideBuckets)}}
}

// Enroll is the enroll function's permissions: list the account's
// buckets, read their tags, turn on (reading first, so as to keep what is
// there) EventBridge notifications, the inventory report and default
// encryption on the buckets the policy selects, and send a new bucket's
// backfill to the control queue.
func Enroll(r Resources) []Statement {
	out := []Statement{
		// ListBuckets needs s3:ListAllMyBuckets, which takes no bucket ARN.
		{Sid: "ListAccountBuckets", Actions: []string{"s3:ListAllMyBuckets"}, Resources: []string{"*"}},
		// PutBucketNotificationConfiguration replaces the whole
		// configuration: it is read first (GetBucketNotification) so that
		// the bucket's own queue, topic and function targets stay.
		// PutBucketInventoryConfiguration and PutBucketEncryption likewise.
		{Sid: "EnrollBuckets", Actions: []string{"s3:GetBucketTagging", "s3:GetBucketNotification", "s3:PutBucketNotification",
			"s3:GetInventoryConfiguration", "s3:PutInventoryConfiguration", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration"},
			Resources: r.bucketARNs(""), Condition: r.inAccount(r.AccountWideBuckets)},
	}
	if r.ControlQueueARN != "" {
		// A new bucket's backfill is a control-queue message; no other
		// queue, and no jobs-table access (the planner records the job).
		out = append(out, Statement{Sid: "StartBackfills", Actions: []string{"sqs:SendMessage"}, Resources: []string{r.ControlQueueARN}})
	}
	if len(r.TargetKeyAliases) > 0 {
		// Default encryption names the key an alias points at now.
		out = append(out, Statement{Sid: "ResolveAliases", Actions: []string{"kms:DescribeKey"}, Resources: []string{r.anyKey()},
			Condition: map[string]map[string][]string{"ForAnyValue:StringEquals": {"kms:ResourceAliases": slices.Clone(r.TargetKeyAliases)}}})
	}
	return out
}

// Without returns statements with one action removed (statements left
// empty are dropped): for tests that show each action is needed.
func Without(stmts []Statement, sid, action string) []Statement {
	var out []Statement
	for _, st := range stmts {
		if st.Sid == sid {
			st.Actions = slices.DeleteFunc(slices.Clone(st.Actions), func(a string) bool { return a == action })
			if len(st.Actions) == 0 {
				continue
			}
		}
		out = append(out, st)
	}
	return out
}

// PolicyDocument renders statements as an IAM policy document.
func PolicyDocument(stmts []Statement) []byte {
	type jsonStatement struct {
		Sid       string                         `json:"Sid"`
		Effect    string                         `json:"Effect"`
		Action    []string                       `json:"Action"`
		Resource  []string                       `json:"Resource"`
		Condition map[string]map[string][]string `json:"Condition,omitempty"`
	}
	doc := struct {
		Version   string          `json:"Version"`
		Statement []jsonStatement `json:"Statement"`
	}{Version: "2012-10-17"}
	for _, st := range stmts {
		effect := st.Effect
		if effect == "" {
			effect = "Allow"
		}
		doc.Statement = append(doc.Statement, jsonStatement{st.Sid, effect, st.Actions, st.Resources, st.Condition})
	}
	b, _ := json.Marshal(doc) // strings and maps of strings always marshal
	return b
}

// resolveActions are what resolving the policy's aliases needs: DescribeKey,
// and the key's tags when the policy trusts keys by tag.
func (r Resources) resolveActions() []string {
	if r.TrustByTag {
		return []string{"kms:DescribeKey", "kms:ListResourceTags"}
	}
	return []string{"kms:DescribeKey"}
}
