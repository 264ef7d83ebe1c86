package planner_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// witnessEnv is the planner wired to a witness's S3 and SQS: a versioned
// source bucket, a work queue and a control queue.
func witnessEnv(t *testing.T, w witness.Witness) (*env, string) {
	t.Helper()
	ctx := context.Background()
	v := &env{Env: &emutest.Env{Cfg: w.Cfg, S3: w.S3, SQS: w.SQS, KMS: w.KMS}, target: w.Key(t)}
	v.controlURL, _ = w.Queue(t, "control", map[string]string{"VisibilityTimeout": "2"})
	v.work, _ = w.Queue(t, "work", map[string]string{"VisibilityTimeout": "5"})
	bucket := witness.Name("src")
	if _, err := w.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{%q:{"kmsKeyArn":%q,"versions":"all","excludePrefixes":["tmp/"]}}}`, bucket, v.target)))
	if err != nil {
		t.Fatal(err)
	}
	v.policy = pol
	v.planner = &planner.Planner{Get: w.S3, List: w.S3, Sender: &queue.Sender{API: w.SQS, Backoff: time.Millisecond}, Policy: pol,
		Config: planner.Config{WorkQueueURL: v.work, ControlQueueURL: v.controlURL, MessageBytes: 2048}}
	return v, bucket
}

// The planner's listing against S3 on each witness: across pages
// (ListObjectsV2 and ListObjectVersions answer at most 1,000 keys a page),
// split into ranges at top-level prefixes (StartAfter and KeyMarker are
// exclusive), with keys XML 1.0 cannot carry asked for with
// encoding-type=url (API_ListObjectsV2 and API_ListObjectVersions,
// EncodingType): every key and version is enqueued exactly once.
func TestListingAgainstWitnesses(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		v, bucket := witnessEnv(t, w)
		keys := []string{"a+b c%2F.txt", "ünï/cödé", "plain", "b+c/x", "b/y", "b.txt", "top", "tab\tand\x1fus", "ctl\x01char.txt"}
		for i := range 1050 {
			keys = append(keys, fmt.Sprintf("d/%04d", i))
		}
		var want, wantVersions []string
		versionOf := map[string]string{}
		for _, key := range keys {
			out := v.Put(t, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, "x")
			want = append(want, key+"@")
			wantVersions = append(wantVersions, key+"@"+aws.ToString(out.VersionId))
			versionOf[key] = aws.ToString(out.VersionId)
		}
		v.Put(t, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("tmp/skip-me")}, "x")
		sort.Strings(want)
		sort.Strings(wantVersions)
		clock := &steppingClock{now: time.Unix(1_800_000_000, 0)}
		v.planner.Now = clock.Now
		for _, versions := range []bool{false, true} {
			if versions && w.IsMoto() {
				// moto 5.2.1 ignores encoding-type=url on ListObjectVersions
				// (no EncodingType in its answer, keys raw) and writes U+0001
				// into its XML, which API_ListObjectVersions (EncodingType)
				// URL-encodes when asked: that assertion is skipped for moto,
				// by listing versions without the two keys XML 1.0 cannot
				// carry. Its other keys ("a+b", "b+c/") come through as they
				// are, because the planner decodes only an answer that says
				// it is encoded.
				for _, key := range []string{"tab\tand\x1fus", "ctl\x01char.txt"} {
					if _, err := w.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
						VersionId: aws.String(versionOf[key])}); err != nil {
						t.Fatal(err)
					}
					wantVersions = slices.DeleteFunc(wantVersions, func(k string) bool { return k == key+"@"+versionOf[key] })
				}
			}
			for _, ranges := range []int{1, 3} {
				v.planner.Config.ListingRanges = ranges
				runContinuations(t, v, clock, planner.Job{Type: planner.TypeListing, Bucket: bucket, Versions: versions}, time.Minute)
				got := drainObjects(t, v, messages.SourceListing)
				sort.Strings(got)
				expect := want
				if versions {
					expect = wantVersions
				}
				if versions && ranges > 1 && w.IsMoto() {
					// moto 5.2.1's ListObjectVersions drops the first key after
					// a KeyMarker that is not itself a key ("b/" loses "b/y"),
					// where API_ListObjectVersions (KeyMarker) starts the
					// listing after the marker: a range's first key is lost
					// there, so this assertion is skipped for moto.
					continue
				}
				if strings.Join(got, "\n") != strings.Join(expect, "\n") {
					t.Errorf("ranges=%d versions=%v: enqueued %d objects, want %d once each; first differences: %v", ranges, versions, len(got), len(expect), firstDiff(got, expect))
				}
			}
		}
	})
}

func firstDiff(got, want []string) []string {
	g := map[string]bool{}
	for _, k := range got {
		g[k] = true
	}
	var out []string
	for _, k := range want {
		if !g[k] && len(out) < 5 {
			out = append(out, "missing "+fmt.Sprintf("%q", k))
		}
	}
	w := map[string]bool{}
	for _, k := range want {
		w[k] = true
	}
	for _, k := range got {
		if !w[k] && len(out) < 10 {
			out = append(out, "extra "+fmt.Sprintf("%q", k))
		}
	}
	return out
}
