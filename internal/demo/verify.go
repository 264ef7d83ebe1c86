package demo

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// verification is what verify found.
type verification struct {
	states     map[string]int64  // final state label → versions
	notUpdated map[string]string // bucket/key@version → state, for versions that should have been updated
	rewritten  []string          // versions whose stored bytes, ETag, date or id changed
}

// verify HEADs every version through the SDK and checks it is in the
// state the policy demands, or skipped with a reason the decision table
// gives, and that no stored byte, ETag, date or version changed.
func (d *demo) verify(ctx context.Context) (verification, error) {
	v := verification{states: map[string]int64{}, notUpdated: map[string]string{}}
	for _, bucket := range []string{DataBucket, LockedBucket, LegacyBucket, NewBucket} {
		target, _ := d.policy.Lookup(bucket)
		for _, obj := range d.emu.Versions(bucket) {
			if obj.DeleteMarker {
				v.states["delete marker (gone)"]++
				continue
			}
			id := bucket + "/" + obj.Key + "@" + obj.VersionID
			if was, ok := d.before[id]; ok && was != fingerprintOf(obj) {
				v.rewritten = append(v.rewritten, id+": stored bytes, ETag, Last-Modified or version changed")
			}
			if !target.InScope(obj.Key) {
				v.states["skipped: excluded-prefix"]++
				continue
			}
			if !obj.IsLatest && target.Versions != policy.VersionsAll {
				label := "noncurrent, out of scope"
				if bucket == LegacyBucket {
					label = "kept: the unencrypted version a copy replaced"
				}
				v.states[label]++
				continue
			}
			st, err := d.head(ctx, bucket, obj.Key, obj.VersionID)
			if err != nil {
				return v, err
			}
			dec := rekey.Decide(st, target, false, time.Now())
			if dec.Update || dec.Copy {
				v.notUpdated[id] = fmt.Sprintf("is %s %s bucketKey=%v: it should have been updated", st.Encryption, st.KMSKeyARN, st.BucketKey)
				v.states["NOT UPDATED"]++
				continue
			}
			label := dec.Outcome.String()
			if dec.Outcome.Status == rekey.Compliant {
				label = "SSE-KMS under the target key with a bucket key"
				if bucket == LegacyBucket {
					label = "copied: SSE-KMS under the target key, a new version"
				}
			}
			v.states[label]++
		}
	}
	return v, nil
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (d *demo) head(ctx context.Context, bucket, key, version string) (rekey.State, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "null" {
		in.VersionId = aws.String(version)
	}
	out, err := d.s3.HeadObject(ctx, in)
	if err != nil {
		// An SSE-C object answers a HEAD without its key with a bare 400;
		// with the key it must answer.
		sum := md5.Sum(d.customer)
		in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(d.customer))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
		if _, err2 := d.s3.HeadObject(ctx, in); err2 != nil {
			return rekey.State{}, fmt.Errorf("verify %s/%s: %w", bucket, key, err)
		}
		return rekey.State{Encryption: rekey.EncC}, nil
	}
	return rekey.StateFromHead(out), nil
}
