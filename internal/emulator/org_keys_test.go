package emulator_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// The AccessDenied messages of UpdateObjectEncryption for a key of
// another account, verbatim from the S3 API reference (seeds 000 and 001).
const (
	msgKeyOtherAccount = "The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again."
	msgOwnerNotInOrg   = "The bucket owner's account was approved to make UpdateObjectEncryption requests that use any Amazon Web Services KMS key in their organization, but the bucket owner's account isn't part of an organization in Organizations. Make sure that the bucket owner's account and the specified KMS key belong to the same organization, and then try again."
	msgKeyOtherOrg     = "The specified Amazon Web Services KMS key must be from the same organization in Organizations as the bucket. Specify a KMS key that belongs to the same organization as the bucket, and then try again."
)

// keyOpenTo makes a key in account whose key policy lets the listed
// accounts use it, and returns its ARN.
func keyOpenTo(t *testing.T, o *emulator.Organization, account string, users ...string) string {
	t.Helper()
	ctx := context.Background()
	c := root(o, account)
	key, err := c.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(key.KeyMetadata.Arn)
	if len(users) > 0 {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + strings.Join(users, `","`) + `"]},"Action":"kms:*","Resource":"*"}]}`
		if _, err := c.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), Policy: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	return arn
}

// bucketWithObject makes a bucket of account holding one SSE-S3 object.
func bucketWithObject(t *testing.T, c orgClients, bucket string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("payload")}); err != nil {
		t.Fatal(err)
	}
}

func rekeyTo(c orgClients, bucket, keyARN string) error {
	_, err := c.s3.UpdateObjectEncryption(context.Background(), &s3.UpdateObjectEncryptionInput{Bucket: aws.String(bucket), Key: aws.String("k"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(keyARN)}}})
	return err
}

// With AWS Support's approval to use keys of its organization, an account
// may re-key onto a key of another member, whose key policy must allow
// it; the bucket owner must be in an organization, the key's account in
// the same one, and the caller needs organizations:DescribeAccount
// (UpdateObjectEncryption, Permissions and Errors; seeds 000 and 001).
func TestUpdateObjectEncryptionOrganizationKeys(t *testing.T) {
	o := startOrg(t)
	for _, account := range []string{memberA, outsider} {
		if err := o.ApproveOrganizationKeys(account); err != nil {
			t.Fatal(err)
		}
	}
	bucketWithObject(t, root(o, memberA), "approved-a")
	bucketWithObject(t, root(o, memberB), "unapproved-b")
	bucketWithObject(t, root(o, outsider), "outside-bucket")
	memberKey := keyOpenTo(t, o, memberB, memberA, memberB, outsider)
	defaultPolicyKey := keyOpenTo(t, o, memberB)
	outsideKey := keyOpenTo(t, o, outsider, memberA, outsider)
	noDescribe, err := o.AddUser(memberA, "rekeyer", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","kms:*"],"Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		caller  orgClients
		bucket  string
		key     string
		wantMsg string // "" for success
	}{
		{"an approved member onto another member's key", root(o, memberA), "approved-a", memberKey, ""},
		{"an account without the approval", root(o, memberB), "unapproved-b", keyOpenTo(t, o, memberA, memberB), msgKeyOtherAccount},
		{"an approved member onto a key outside the organization", root(o, memberA), "approved-a", outsideKey, msgKeyOtherOrg},
		{"an approved account outside any organization", root(o, outsider), "outside-bucket", memberKey, msgOwnerNotInOrg},
		{"a caller not allowed organizations:DescribeAccount", orgAs(o, noDescribe, "", ""), "approved-a", memberKey,
			"User is not authorized to perform: organizations:DescribeAccount"},
		{"a key whose key policy does not open it to the bucket owner", root(o, memberA), "approved-a", defaultPolicyKey,
			"is not authorized to perform: kms:Encrypt on resource: " + defaultPolicyKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := rekeyTo(tc.caller, tc.bucket, tc.key)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || !strings.Contains(apiMessage(err), tc.wantMsg) {
				t.Fatalf("UpdateObjectEncryption = %v, want 403 AccessDenied %q", err, tc.wantMsg)
			}
		})
	}
	// The re-keyed object is under the other member's key and still reads.
	got, err := root(o, memberA).s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("approved-a"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if string(body) != "payload" || aws.ToString(got.SSEKMSKeyId) != memberKey {
		t.Fatalf("after re-keying: %q under %s, want payload under %s", body, aws.ToString(got.SSEKMSKeyId), memberKey)
	}
}

// Alone, an emulator is in no organization: an account approved for
// organization keys is told so for a key of another account (seeds 000
// and 001); without the approval, the same-account message.
func TestUpdateObjectEncryptionApprovalOutsideAnOrganization(t *testing.T) {
	foreignKey := "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		name     string
		approved bool
		want     string
	}{
		{"approved", true, msgOwnerNotInOrg},
		{"not approved", false, msgKeyOtherAccount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, emulator.Options{OrganizationKeys: tc.approved})
			mustBucket(t, e, "lone", false)
			put(t, e, &s3.PutObjectInput{Bucket: aws.String("lone"), Key: aws.String("k")}, "v")
			_, err := e.s3.UpdateObjectEncryption(context.Background(), &s3.UpdateObjectEncryptionInput{Bucket: aws.String("lone"), Key: aws.String("k"),
				ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(foreignKey)}}})
			if apiCode(err) != "AccessDenied" || apiMessage(err) != tc.want {
				t.Fatalf("UpdateObjectEncryption = %v, want AccessDenied %q", err, tc.want)
			}
		})
	}
}
