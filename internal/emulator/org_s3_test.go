package emulator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

const reportsBucket = "org-central-reports"

// reportsPolicy lets every principal of the organization write and read
// under its own account's prefix only: ${aws:PrincipalAccount} in the
// Resource, aws:PrincipalOrgID in the Condition (IAM User Guide,
// reference_policies_variables.md "Resource element",
// reference_policies_condition-keys.md "aws:PrincipalOrgID"); member B is
// denied outright, as a Deny beats any Allow.
const reportsPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"OwnPrefix","Effect":"Allow","Principal":"*","Action":["s3:PutObject","s3:GetObject"],
  "Resource":"arn:aws:s3:::` + reportsBucket + `/${aws:PrincipalAccount}/*",
  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"{ORG}"}}},
 {"Sid":"Quarantined","Effect":"Deny","Principal":{"AWS":"{DENIED}"},"Action":"s3:*","Resource":"arn:aws:s3:::` + reportsBucket + `/*"}]}`

// reporterRole is a member role allowed, by its identity policy, to write
// and read any report: the bucket policy narrows it to its own prefix.
const reporterPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::` + reportsBucket + `/*"}]}`

func reporterTrust(account string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + account + `"},"Action":"sts:AssumeRole"}]}`
}

// reportsWorld makes the central bucket with its policy and a reporter
// role in each member and in the outside account.
func reportsWorld(t *testing.T, o *emulator.Organization, denied string) map[string]orgClients {
	t.Helper()
	ctx := context.Background()
	central := root(o, centralAccount)
	if _, err := central.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(reportsBucket)}); err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(policy(reportsPolicy, o, ""), "{DENIED}", "arn:aws:iam::"+denied+":role/reporter")
	if _, err := central.s3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(reportsBucket), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	got, err := central.s3.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(reportsBucket)})
	if err != nil || aws.ToString(got.Policy) != doc {
		t.Fatalf("GetBucketPolicy = %v, %v", got, err)
	}
	roles := map[string]orgClients{}
	for _, account := range []string{memberA, memberB, outsider} {
		arn := putRole(t, o, account, "reporter", reporterTrust(account), reporterPolicy)
		roles[account] = assume(t, root(o, account), arn)
	}
	return roles
}

func putReport(c orgClients, key string, opts ...func(*s3.PutObjectInput)) error {
	in := &s3.PutObjectInput{Bucket: aws.String(reportsBucket), Key: aws.String(key), Body: strings.NewReader(`{"done":true}`)}
	for _, o := range opts {
		o(in)
	}
	_, err := c.s3.PutObject(context.Background(), in)
	return err
}

// Completion reports go to a central account's bucket: writable only by
// the organization's member roles, each under its own account's prefix,
// unreadable by other members. A request from one account to another's
// bucket needs both the caller's identity policy and the bucket policy
// (IAM User Guide, reference_policies_evaluation-logic-cross-account.md);
// an explicit Deny wins over any Allow
// (reference_policies_evaluation-logic.md).
func TestCentralReportsCrossAccount(t *testing.T) {
	o := startOrg(t)
	roles := reportsWorld(t, o, "none")
	noS3, err := o.AddUser(memberA, "no-s3", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := putReport(roles[memberA], memberA+"/job-1.json"); err != nil {
		t.Fatalf("member A writing its report: %v", err)
	}
	if err := putReport(roles[memberB], memberB+"/job-1.json"); err != nil {
		t.Fatalf("member B writing its report: %v", err)
	}
	cases := []struct {
		name   string
		caller orgClients
		read   bool
		key    string
		wantOK bool
	}{
		{"a member reads its own report", roles[memberA], true, memberA + "/job-1.json", true},
		{"a member cannot read another member's report", roles[memberB], true, memberA + "/job-1.json", false},
		{"a member cannot write under another member's prefix", roles[memberB], false, memberA + "/forged.json", false},
		{"a member cannot write outside any prefix", roles[memberA], false, "loose.json", false},
		{"an account outside the organization cannot write even its own prefix", roles[outsider], false, outsider + "/job-1.json", false},
		{"the bucket policy alone is not enough: the caller's identity policy must allow too", orgAs(o, noS3, "", ""), false, memberA + "/job-2.json", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.read {
				_, err = tc.caller.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(reportsBucket), Key: aws.String(tc.key)})
			} else {
				err = putReport(tc.caller, tc.key)
			}
			if tc.wantOK && err != nil {
				t.Fatal(err)
			}
			if !tc.wantOK && (apiCode(err) != "AccessDenied" || httpStatus(err) != 403) {
				t.Fatalf("err = %v, want 403 AccessDenied", err)
			}
		})
	}
	// The objects are the central account's: it lists both reports.
	out, err := root(o, centralAccount).s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(reportsBucket)})
	if err != nil || aws.ToInt32(out.KeyCount) != 2 {
		t.Fatalf("central listing = %+v, %v", out, err)
	}
	// A member does not see the central bucket among its own buckets.
	mine, err := root(o, memberA).s3.ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil || len(mine.Buckets) != 0 {
		t.Fatalf("member A ListBuckets = %+v, %v", mine, err)
	}
}

// A Deny naming a member's role wins over the organization-wide Allow
// (reference_policies_evaluation-logic.md, "explicit deny").
func TestCentralReportsDenyWins(t *testing.T) {
	o := startOrg(t)
	roles := reportsWorld(t, o, memberB)
	if err := putReport(roles[memberA], memberA+"/ok.json"); err != nil {
		t.Fatal(err)
	}
	if err := putReport(roles[memberB], memberB+"/job.json"); apiCode(err) != "AccessDenied" {
		t.Fatalf("denied member writing = %v, want AccessDenied", err)
	}
}

// ExpectedBucketOwner that is not the bucket's account answers 403 Access
// Denied; the right one passes (S3 User Guide, bucket-owner-condition.md).
func TestExpectedBucketOwnerAcrossAccounts(t *testing.T) {
	o := startOrg(t)
	roles := reportsWorld(t, o, "none")
	if err := putReport(roles[memberA], memberA+"/a.json", func(in *s3.PutObjectInput) { in.ExpectedBucketOwner = aws.String(centralAccount) }); err != nil {
		t.Fatalf("right owner: %v", err)
	}
	err := putReport(roles[memberA], memberA+"/b.json", func(in *s3.PutObjectInput) { in.ExpectedBucketOwner = aws.String(memberA) })
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
		t.Fatalf("wrong owner = %v, want 403 AccessDenied", err)
	}
}

// Bucket names are global: another account's CreateBucket of a taken name
// answers 409 BucketAlreadyExists (API_CreateBucket.md, Errors).
func TestBucketNamesAreGlobal(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	if _, err := root(o, memberA).s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("taken-name")}); err != nil {
		t.Fatal(err)
	}
	_, err := root(o, memberB).s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("taken-name")})
	if apiCode(err) != "BucketAlreadyExists" || httpStatus(err) != 409 {
		t.Fatalf("CreateBucket of a taken name = %v, want 409 BucketAlreadyExists", err)
	}
	// Another account's bucket with no bucket policy is closed to others.
	_, err = root(o, memberB).s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("taken-name")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("listing another account's bucket = %v, want AccessDenied", err)
	}
}

// A reports key in the central account: SSE-KMS writes by members need the
// key policy to allow them and their identity policy to allow the KMS
// action (KMS Developer Guide, key-policy-modifying-external-accounts.md;
// IAM cross-account evaluation). With the default key policy, only the
// key's own account may use it.
func TestCentralKeyPolicyAcrossAccounts(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	central := root(o, centralAccount)
	roles := reportsWorld(t, o, "none")
	key, err := central.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	sseKMS := func(in *s3.PutObjectInput) {
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(keyARN)
	}
	withKMS := putRole(t, o, memberA, "reporter-kms", reporterTrust(memberA), `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::`+reportsBucket+`/*"},
	 {"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Encrypt"],"Resource":"`+keyARN+`"}]}`)
	a := assume(t, root(o, memberA), withKMS)
	if err := putReport(a, memberA+"/sealed.json", sseKMS); apiCode(err) != "AccessDenied" {
		t.Fatalf("default key policy: member write = %v, want AccessDenied", err)
	}
	orgKeyPolicy := policy(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::{ACCOUNT}:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Allow","Principal":"*","Action":["kms:GenerateDataKey","kms:Encrypt"],"Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"{ORG}"}}}]}`, o, centralAccount)
	if _, err := central.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyARN), Policy: aws.String(orgKeyPolicy)}); err != nil {
		t.Fatal(err)
	}
	if err := putReport(a, memberA+"/sealed.json", sseKMS); err != nil {
		t.Fatalf("organization key policy: member write: %v", err)
	}
	// Writing is not reading: the key policy grants members no kms:Decrypt,
	// so a member's own sealed report does not read back, while the
	// central account reads it.
	if _, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(reportsBucket), Key: aws.String(memberA + "/sealed.json")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("member reading under the central key = %v, want AccessDenied", err)
	}
	if _, err := central.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(reportsBucket), Key: aws.String(memberA + "/sealed.json")}); err != nil {
		t.Fatalf("central account reading its report: %v", err)
	}
	// A member's own bucket may use the central key too (S3 takes a key of
	// another account by ARN for SSE-KMS, UsingKMSEncryption.md).
	own := root(o, memberA)
	if _, err := own.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("member-a-own")}); err != nil {
		t.Fatal(err)
	}
	if _, err := own.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("member-a-own"), Key: aws.String("k"), Body: strings.NewReader("v"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyARN)}); err != nil {
		t.Fatalf("SSE-KMS under another account's key in a member's bucket: %v", err)
	}
	// The plain reporter role's identity policy allows no KMS action.
	if err := putReport(roles[memberA], memberA+"/sealed-2.json", sseKMS); apiCode(err) != "AccessDenied" {
		t.Fatalf("no KMS identity permission = %v, want AccessDenied", err)
	}
	// Direct KMS use of another account's key, by ARN, obeys the same rule.
	if _, err := a.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("member Encrypt under the central key: %v", err)
	}
	if _, err := root(o, outsider).kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("outsider Encrypt = %v, want AccessDeniedException", err)
	}
}

// UpdateObjectEncryption takes only a key of the bucket owner's account: a
// target key of another account, even one its key policy opens to the
// bucket owner, is refused 403 AccessDenied with the reference's message
// (UpdateObjectEncryption, Errors; seeds 000 and 001).
func TestUpdateObjectEncryptionTargetKeyInAnotherAccount(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	a, b := root(o, memberA), root(o, memberB)
	if _, err := a.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("member-a-data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("member-a-data"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	key, err := b.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	open := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + memberA + `","` + memberB + `"]},"Action":"kms:*","Resource":"*"}]}`
	if _, err := b.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyARN), Policy: aws.String(open)}); err != nil {
		t.Fatal(err)
	}
	_, err = a.s3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("member-a-data"), Key: aws.String("k"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(keyARN)}}})
	const want = "The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again."
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || apiMessage(err) != want {
		t.Fatalf("UpdateObjectEncryption with another account's key = %v, want 403 AccessDenied %q", err, want)
	}
}

// An account added while running is listed, placed in its OU, and from
// then on passes aws:PrincipalOrgID conditions it failed before joining.
func TestAccountAddedWhileRunning(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	reportsWorld(t, o, "none")
	const late = "777766665555"
	if err := o.AddOutsideAccount(late); err != nil {
		t.Fatal(err)
	}
	reporter := assume(t, root(o, late), putRole(t, o, late, "reporter", reporterTrust(late), reporterPolicy))
	if err := putReport(reporter, late+"/early.json"); apiCode(err) != "AccessDenied" {
		t.Fatalf("before joining = %v, want AccessDenied", err)
	}
	ou, err := o.CreateUnit(o.RootID(), "added-later")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.AddAccount(late, ou); err != nil {
		t.Fatal(err)
	}
	if err := putReport(reporter, late+"/joined.json"); err != nil {
		t.Fatalf("after joining: %v", err)
	}
	in, err := root(o, mgmtAccount).orgs.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(ou)})
	if err != nil || len(in.Accounts) != 1 || aws.ToString(in.Accounts[0].Id) != late {
		t.Fatalf("ListAccountsForParent(new OU) = %+v, %v", in, err)
	}
}

// TestBucketPolicyEncryptionKeyCondition: a bucket policy that denies
// PutObject unless s3:x-amz-server-side-encryption-aws-kms-key-id names
// the central key admits a write under that key and refuses one without
// the header (the key is then absent, and StringNotEquals on an absent key
// matches: IAM User Guide, reference_policies_elements_condition_operators.md;
// the key: Service Authorization Reference, "Condition keys for Amazon S3").
func TestBucketPolicyEncryptionKeyCondition(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	central := root(o, centralAccount)
	key, err := central.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	if _, err := central.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(reportsBucket)}); err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"OnlyUnderTheCentralKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject",
	 "Resource":"arn:aws:s3:::` + reportsBucket + `/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"` + keyARN + `"}}}]}`
	if _, err := central.s3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(reportsBucket), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	put := func(in *s3.PutObjectInput) error {
		in.Bucket, in.Key, in.Body = aws.String(reportsBucket), aws.String("r.json"), strings.NewReader("{}")
		_, err := central.s3.PutObject(ctx, in)
		return err
	}
	if err := put(&s3.PutObjectInput{ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyARN)}); err != nil {
		t.Errorf("PutObject under the central key: %v", err)
	}
	if err := put(&s3.PutObjectInput{}); apiCode(err) != "AccessDenied" {
		t.Errorf("PutObject without the key header: %v, want AccessDenied", err)
	}
}
