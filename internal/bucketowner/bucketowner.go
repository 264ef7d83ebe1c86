// Package bucketowner carries the account a client expects to own the
// buckets it reads and writes, for the S3 requests that send it as
// ExpectedBucketOwner. S3 answers 403 Access Denied to a request whose
// expected owner is not the bucket's
// (docs/AmazonS3/latest/userguide/bucket-owner-condition.md in the AWS
// docs): s3rekey's own buckets (inventory, reports) can be another
// account's by configuration, or by a name deleted and taken over.
package bucketowner

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// EnvAccountID is the deployment's account: the owner of the inventory
// bucket (S3 Inventory delivers there with this account as the
// destination's AccountId) and, by default, of the report bucket.
const EnvAccountID = "S3REKEY_ACCOUNT_ID"

// Expecting is a client that names the owner of the buckets it is for.
type Expecting interface{ ExpectedBucketOwner() string }

// Client is an S3 client for the buckets of one account.
type Client struct {
	*s3.Client
	// Owner is the account ID; empty expects no owner.
	Owner string
}

var _ Expecting = Client{}

// ExpectedBucketOwner is the owner the client's requests name.
func (c Client) ExpectedBucketOwner() string { return c.Owner }

// Of is the owner a request through api names: the account of an
// Expecting client, nil for any other (S3 then checks no owner).
func Of(api any) *string {
	if e, ok := api.(Expecting); ok && e.ExpectedBucketOwner() != "" {
		return aws.String(e.ExpectedBucketOwner())
	}
	return nil
}

// Named is an account ID as a request's ExpectedBucketOwner: nil when
// empty, which sends none.
func Named(account string) *string {
	if account == "" {
		return nil
	}
	return aws.String(account)
}
