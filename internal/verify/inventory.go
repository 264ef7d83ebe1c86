package verify

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// reportRef is one S3 Inventory report.
type reportRef struct {
	url         string
	manifest    *inventory.Manifest
	destination string
	created     time.Time
}

// latestManifests reads the manifests given and keeps each source
// bucket's latest report.
func latestManifests(ctx context.Context, api metatable.GetObjectAPI, urls []string) (map[string]*reportRef, error) {
	out := map[string]*reportRef{}
	for _, u := range urls {
		m, dest, err := planner.ReadManifest(ctx, api, u)
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %w", u, err)
		}
		ms, _ := strconv.ParseInt(m.CreationTimestamp, 10, 64)
		ref := &reportRef{url: u, manifest: m, destination: dest, created: time.UnixMilli(ms).UTC()}
		if prev, ok := out[m.SourceBucket]; !ok || ref.created.After(prev.created) {
			out[m.SourceBucket] = ref
		}
	}
	return out, nil
}

// eachRow reads every row of a report.
func eachRow(ctx context.Context, api metatable.GetObjectAPI, ref *reportRef, req *Requests, fn func(inventory.Row)) error {
	cols, err := ref.manifest.Columns()
	if err != nil {
		return err
	}
	for _, f := range ref.manifest.Files {
		req.Report++
		file, err := inventory.Fetch(ctx, api, ref.destination, f.Key, f.MD5Checksum, "")
		if err != nil {
			return err
		}
		err = func() error {
			defer os.Remove(file.Name())
			defer file.Close()
			r, err := inventory.Open(ref.manifest.FileFormat, file, cols)
			if err != nil {
				return fmt.Errorf("open %s: %w", f.Key, err)
			}
			defer r.Close()
			for {
				row, err := r.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("read %s: %w", f.Key, err)
				}
				fn(row)
			}
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// needsHead: reports give the encryption but no key ARN.
func needsHead(r inventory.Row) bool {
	return !r.IsDeleteMarker && (r.EncryptionStatus == EncSSEKMS || r.EncryptionStatus == EncDSSE)
}

// fromInventory verifies a bucket from its latest S3 Inventory report,
// with a HEAD of each SSE-KMS and DSSE-KMS version (priced first).
func fromInventory(ctx context.Context, c Clients, b *Bucket, target policy.Bucket, ref *reportRef, opts Options) error {
	b.SourceRef, b.AsOf = ref.url, ref.created
	var heads int64
	var anyLatest, anyLock bool
	if err := eachRow(ctx, c.Files, ref, &b.Requests, func(r inventory.Row) {
		if needsHead(r) {
			heads++
		}
		anyLatest = anyLatest || r.HasIsLatest
		anyLock = anyLock || r.HasLock
	}); err != nil {
		return err
	}
	if err := announce(opts, b, target, heads, 0); err != nil {
		return err
	}
	t := newTally(b, target, opts)
	var toHead []Version
	if err := eachRow(ctx, c.Files, ref, &b.Requests, func(r inventory.Row) {
		if r.IsDeleteMarker {
			b.DeleteMarkers++
			return
		}
		v := Version{Key: r.Key, VersionID: r.VersionID, Latest: r.IsLatest || !r.HasIsLatest, Encryption: r.EncryptionStatus,
			BucketKey: r.BucketKeyStatus == "ENABLED", LastModified: r.LastModified}
		if v.Encryption == "" {
			v.Encryption = EncNone
		}
		if r.HasIsLatest && v.VersionID == "" {
			v.VersionID = "null" // an all-versions report leaves the null version's id empty
		}
		if needsHead(r) {
			toHead = append(toHead, v)
			return
		}
		t.add(v)
	}); err != nil {
		return err
	}
	if err := headAll(ctx, c.Head, b, target, opts, toHead, t); err != nil {
		return err
	}
	t.finish()
	b.NotSeen = append(b.NotSeen, "versions written after the report ("+ref.created.Format(time.RFC3339)+")")
	if !anyLatest {
		b.NotSeen = append(b.NotSeen, "noncurrent versions: the report lists current versions only")
	}
	if !anyLock {
		b.NotSeen = append(b.NotSeen, "Object Lock state: the report has no Object Lock fields")
	}
	return nil
}

// findReports adds, for each bucket without a report among the given
// ones, its latest complete report in the inventory destination, when
// one is configured.
func findReports(ctx context.Context, c Clients, names []string, opts Options, manifests map[string]*reportRef) error {
	if opts.InventoryBucket == "" || c.Reports == nil {
		return nil
	}
	for _, name := range names {
		if manifests[name] != nil {
			continue
		}
		url, err := inventory.LatestManifest(ctx, c.Reports, c.Files, opts.InventoryBucket, opts.InventoryPrefix, name, opts.InventoryID, aws.ToString(bucketowner.Of(c.Reports)))
		if err != nil {
			return fmt.Errorf("the latest inventory report of s3://%s: %w", name, err)
		}
		if url == "" {
			continue
		}
		found, err := latestManifests(ctx, c.Files, []string{url})
		if err != nil {
			return err
		}
		// A report's manifest names its source bucket: it is this one.
		maps.Copy(manifests, found)
	}
	return nil
}
