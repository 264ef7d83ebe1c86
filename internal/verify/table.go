package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// TableLag is how long S3 Metadata takes to show a change: "typically
// within one hour" (user guide, metadata-tables-inventory-schema).
const TableLag = time.Hour

// seen is a version read from the table, waiting to know if it is latest.
type seen struct {
	seq    string
	v      Version
	marker bool
}

// fromTable verifies a bucket from its live inventory table: no request
// to any object.
func fromTable(ctx context.Context, c Clients, b *Bucket, target policy.Bucket, opts Options) error {
	b.Requests.Catalog++
	loc, err := metatable.Find(ctx, c.Metadata, b.Bucket, b.owner)
	if err != nil {
		return err
	}
	b.Requests.Catalog += 2 // getConfig, loadTable
	md, _, err := c.Catalog.LoadTable(ctx, loc)
	if err != nil {
		return fmt.Errorf("load the live inventory table: %w", err)
	}
	snap, ok := md.Current()
	if !ok {
		return fmt.Errorf("%w (the table has no snapshot yet)", metatable.ErrNoTable)
	}
	b.SourceRef = fmt.Sprintf("%s/%s.%s snapshot %d", loc.TableBucketARN, loc.Namespace, loc.Table, snap.ID)
	b.AsOf = snap.Time()
	t := newTally(b, target, opts)
	latest := map[string]seen{}
	var inTable map[string]Version
	if opts.Recent {
		inTable = map[string]Version{}
	}
	settle := func(s seen, isLatest bool) {
		if s.marker {
			b.DeleteMarkers++
			return
		}
		s.v.Latest = isLatest
		t.add(s.v)
	}
	reader := &metatable.Reader{Files: c.Files}
	err = reader.Scan(ctx, snap, func(r metatable.Row) error {
		if r.Bucket != "" && r.Bucket != b.Bucket {
			return fmt.Errorf("the table of %s has a row of bucket %s", b.Bucket, r.Bucket)
		}
		s := seen{seq: r.SequenceNumber, marker: aws.ToBool(r.IsDeleteMarker), v: tableVersion(r)}
		if inTable != nil {
			inTable[r.Key+"\x00"+s.v.VersionID] = s.v
		}
		prev, ok := latest[r.Key]
		switch {
		case !ok:
			latest[r.Key] = s
		case s.seq > prev.seq:
			settle(prev, false)
			latest[r.Key] = s
		default:
			settle(s, false)
		}
		return nil
	})
	b.Requests.TableFiles = reader.FilesRead
	if err != nil {
		return fmt.Errorf("read the live inventory table: %w", err)
	}
	for _, s := range latest {
		settle(s, true)
	}
	if opts.Recent {
		if err := recentChanges(ctx, c, b, inTable); err != nil {
			return err
		}
		if opts.HeadRecent {
			if err := headRecent(ctx, c, b, target, opts, t); err != nil {
				return err
			}
		}
	}
	t.finish()
	b.NotSeen = append(b.NotSeen,
		fmt.Sprintf("changes after about %s: S3 Metadata shows updates typically within an hour, so versions written, deleted or re-encrypted since may be missing or shown as they were (snapshot committed %s)",
			b.AsOf.Add(-TableLag).Format(time.RFC3339), b.AsOf.Format(time.RFC3339)),
		"Object Lock state: live inventory tables have no retention or legal hold columns")
	if b.RecentChecked {
		b.NotSeen = append(b.NotSeen, "re-encryptions since the snapshot: a listing shows new and deleted versions, not a version's new key")
	}
	return nil
}

// headRecent reads the key of each version newer than the table with a
// HEAD (a few objects, priced first) and counts it.
func headRecent(ctx context.Context, c Clients, b *Bucket, target policy.Bucket, opts Options, t *tally) error {
	var toHead []Version
	for _, v := range b.Recent {
		if v.Reason != "delete marker" {
			toHead = append(toHead, v)
		}
	}
	if err := announce(opts, b, target, int64(len(toHead)), 0); err != nil {
		return err
	}
	if err := headAll(ctx, c.Head, b, target, opts, toHead, t); err != nil {
		return err
	}
	b.RecentKeysRead = true
	return nil
}

// tableVersion reads a row. A null version_id is the null version.
func tableVersion(r metatable.Row) Version {
	v := Version{Key: r.Key, VersionID: aws.ToString(r.VersionID), KMSKeyARN: aws.ToString(r.KMSKeyARN),
		BucketKey: aws.ToBool(r.BucketKeyEnabled), Encryption: aws.ToString(r.EncryptionStatus)}
	if v.VersionID == "" {
		v.VersionID = "null"
	}
	if v.Encryption == "" {
		v.Encryption = EncNone // null: unencrypted
	}
	if r.LastModified != nil {
		v.LastModified = time.UnixMicro(*r.LastModified).UTC()
	}
	return v
}

// recentChanges lists the bucket and names the versions the table does
// not have (newer than its snapshot) and the ones it has that are gone.
// Listing is a bucket request: no object is read.
func recentChanges(ctx context.Context, c Clients, b *Bucket, inTable map[string]Version) error {
	err := listVersions(ctx, c.List, b.Bucket, b.owner, &b.Requests, func(v Version, marker bool) {
		id := v.Key + "\x00" + v.VersionID
		if _, ok := inTable[id]; ok {
			delete(inTable, id)
			return
		}
		if marker {
			v.Encryption, v.Reason = "", "delete marker"
		} else {
			v.Encryption, v.Reason = "", "not in the table yet: its key is not known without a HEAD"
		}
		b.Recent = append(b.Recent, v)
	})
	if err != nil {
		return fmt.Errorf("list for recent changes: %w", err)
	}
	for _, v := range inTable {
		v.Reason = "in the table, gone from the bucket"
		b.GoneSinceSnapshot = append(b.GoneSinceSnapshot, v)
	}
	sortVersions(b.Recent)
	sortVersions(b.GoneSinceSnapshot)
	b.RecentChecked = true
	return nil
}
