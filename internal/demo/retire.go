package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/rekey"
	"github.com/s3rekey/s3rekey/internal/retire"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// EvidenceMacAlias names the HMAC key the demo signs evidence with, and
// OldKeyAlias the key the objects were written under, to retire.
const (
	EvidenceMacAlias = "alias/s3rekey-evidence"
	OldKeyAlias      = "alias/demo-old-key"
)

// Retirement is the demo's last step: the buckets verified from their
// metadata tables and the old key retired through disabling.
type Retirement struct {
	Verified       *verify.Result
	ObjectRequests int64  // object requests the verification made (must be 0)
	Evidence       string // s3:// URL of the first evidence
	Refused        string // why disabling was refused at first
	Rekeyed        int    // versions the demo then moved off the old key
	Disabled       *retire.Record
	Failures       []string
}

// setupMetadata gives every data bucket an S3 Metadata live inventory
// table, and makes the HMAC key evidence is signed with.
func (d *demo) setupMetadata(ctx context.Context) error {
	for _, b := range []string{DataBucket, LockedBucket, LegacyBucket} {
		_, err := d.s3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String(b),
			MetadataConfiguration: &types.MetadataConfiguration{
				JournalTableConfiguration:   &types.JournalTableConfiguration{RecordExpiration: &types.RecordExpiration{Expiration: types.ExpirationStateDisabled}},
				InventoryTableConfiguration: &types.InventoryTableConfiguration{ConfigurationState: types.InventoryConfigurationStateEnabled},
			}})
		if err != nil {
			return fmt.Errorf("metadata table of %s: %w", b, err)
		}
	}
	kmsc := kms.NewFromConfig(clientConfig(d.emu.AWSConfig()))
	mac, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("signs s3rekey evidence"),
		KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		return err
	}
	d.macKey = aws.ToString(mac.KeyMetadata.Arn)
	if _, err = kmsc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(EvidenceMacAlias), TargetKeyId: mac.KeyMetadata.KeyId}); err != nil {
		return err
	}
	_, err = kmsc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(OldKeyAlias), TargetKeyId: aws.String(d.oldKey)})
	return err
}

func (d *demo) objectRequests() int64 {
	var n int64
	for _, c := range d.emu.Counts() {
		if c.Service == "s3" && c.Bucket != "" && c.Bucket != ReportBucket && (c.Operation == "HeadObject" || c.Operation == "GetObject") {
			n += c.N
		}
	}
	return n
}

// verifyFromTables verifies the data buckets from their tables, writes
// signed evidence, and checks it.
func (d *demo) verifyFromTables(ctx context.Context, purpose string) (*verify.Result, string, int64, error) {
	cfg := clientConfig(d.emu.AWSConfig())
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	before := d.objectRequests()
	res, err := verify.Run(ctx, verify.Clients{Metadata: s3c, Catalog: metatable.NewCatalog(cfg), Files: s3c, List: s3c, Head: s3c},
		d.policy, verify.Options{Buckets: []string{DataBucket, LockedBucket, LegacyBucket}, Source: verify.SourceTable, All: true})
	if err != nil {
		return nil, "", 0, err
	}
	objects := d.objectRequests() - before
	kmsc := kms.NewFromConfig(cfg)
	file, err := verify.Seal(ctx, kmsc, d.macKey, verify.NewEvidence(res, verify.PolicyDigest(d.policyJSON), purpose))
	if err != nil {
		return nil, "", 0, err
	}
	url, err := verify.Store(ctx, s3c, d.jobs.ReportBucket, d.jobs.ReportPrefix, d.jobs.ReportKMSKeyARN, res.GeneratedAt, file)
	if err != nil {
		return nil, "", 0, err
	}
	if _, _, err := verify.Check(ctx, kmsc, file, d.macKey); err != nil {
		return nil, "", 0, fmt.Errorf("the evidence just written does not check: %w", err)
	}
	return res, url, objects, nil
}

// retireOldKey verifies the buckets from their tables and retires the old
// key through step (b): refused while versions are under it; those the
// pipeline skipped by policy (DSSE-KMS) are then copied onto the target
// and their old versions deleted, as an operator would decide to, and the
// key is disabled.
func (d *demo) retireOldKey(ctx context.Context) (*Retirement, error) {
	d.say("verifying every bucket from its S3 Metadata live inventory table, then retiring the old key")
	cfg := clientConfig(d.emu.AWSConfig())
	kmsc := kms.NewFromConfig(cfg)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	r := &Retirement{}
	res, url, objects, err := d.verifyFromTables(ctx, "retire-key "+d.oldKey)
	if err != nil {
		return nil, err
	}
	r.Verified, r.Evidence, r.ObjectRequests = res, url, objects
	if objects != 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("verification from the tables made %d object requests", objects))
	}
	loc := retire.Location{Bucket: d.jobs.ReportBucket, Prefix: d.jobs.ReportPrefix, KMSKey: d.jobs.ReportKMSKeyARN}
	rem := retire.Assess(res, d.oldKey)
	_, err = retire.Disable(ctx, kmsc, s3c, loc, rem, url, time.Now())
	if err == nil {
		return r, nil // nothing was left under the old key
	}
	if !errors.Is(err, retire.ErrNotClear) {
		return nil, err
	}
	r.Refused = err.Error()
	for _, v := range rem.Versions {
		if err := d.rekeyVersion(ctx, s3c, v); err != nil {
			r.Failures = append(r.Failures, "re-key "+v.Bucket+"/"+v.Key+": "+err.Error())
			continue
		}
		r.Rekeyed++
	}
	res, url, _, err = d.verifyFromTables(ctx, "retire-key "+d.oldKey)
	if err != nil {
		return nil, err
	}
	r.Verified, r.Evidence = res, url
	rem = retire.Assess(res, d.oldKey)
	rec, err := retire.Disable(ctx, kmsc, s3c, loc, rem, url, time.Now())
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r, nil
	}
	r.Disabled = &rec
	return r, nil
}

// rekeyVersion copies a version in place onto the target key and deletes
// the old version.
func (d *demo) rekeyVersion(ctx context.Context, api *s3.Client, v retire.BucketVersion) error {
	src := rekey.CopySource(v.Bucket, v.Key, v.VersionID)
	if _, err := api.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(v.Bucket), Key: aws.String(v.Key), CopySource: aws.String(src),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(d.target), BucketKeyEnabled: aws.Bool(true)}); err != nil {
		return err
	}
	_, err := api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(v.Bucket), Key: aws.String(v.Key), VersionId: aws.String(v.VersionID)})
	return err
}
