package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// TableLoader loads a live inventory table's metadata (metatable.Catalog).
type TableLoader interface {
	LoadTable(ctx context.Context, loc metatable.Location) (*metatable.TableMetadata, string, error)
}

// ListVersionsAPI lists a bucket's versions.
type ListVersionsAPI interface {
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
}

// HeadAPI reads one version's encryption.
type HeadAPI interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

var (
	_ TableLoader     = (*metatable.Catalog)(nil)
	_ ListVersionsAPI = (*s3.Client)(nil)
	_ HeadAPI         = (*s3.Client)(nil)
)

// Clients are what a verification reads with.
type Clients struct {
	Metadata metatable.MetadataConfigAPI
	Catalog  TableLoader
	// Files reads table files and inventory reports, never objects.
	Files metatable.GetObjectAPI
	// Reports lists an inventory destination, to find a bucket's latest
	// report (Options.InventoryBucket); nil finds none.
	Reports inventory.ListObjectsAPI
	List    ListVersionsAPI
	Head    HeadAPI
}

// Estimate is what a source will ask of S3 before it asks it.
type Estimate struct {
	Bucket  string  `json:"bucket"`
	Source  string  `json:"source"`
	Heads   int64   `json:"heads"`
	Lists   int64   `json:"lists"`
	Dollars float64 `json:"dollars"`
	// AtBudget is how long the HEADs take at the bucket's budget (zero
	// when it has none).
	AtBudget time.Duration `json:"atBudget"`
}

// Options say what to verify and how.
type Options struct {
	// Buckets to verify; empty means every bucket of the policy.
	Buckets []string
	// Source forces a source; empty chooses the best available.
	Source string
	// Inventories are manifest.json URLs of S3 Inventory reports; the
	// latest of a bucket's is used when it has no table.
	Inventories []string
	// InventoryBucket, InventoryPrefix and InventoryID say where S3
	// Inventory delivers the buckets' reports (the stack's inventory
	// bucket, its prefix and the configuration's id): a bucket with no
	// report in Inventories is verified from its latest complete one there.
	InventoryBucket, InventoryPrefix, InventoryID string
	// All lists every version in the result, not only the non-compliant.
	All bool
	// ListUnder also lists every version under this key ARN, exempt ones
	// included (a key to retire).
	ListUnder string
	// Recent lists the bucket when it is read from its table, to name the
	// versions the table does not have yet.
	Recent bool
	// HeadRecent reads, with a HEAD, the key of each version Recent finds
	// that the table does not have, and counts it.
	HeadRecent bool
	// Concurrency is HEADs at once (default 16).
	Concurrency int
	// Estimate is told of the HEADs and listings before they are made;
	// an error stops the bucket's verification.
	Estimate func(Estimate) error
	Now      func() time.Time
}

// Result is a verification of several buckets.
type Result struct {
	GeneratedAt time.Time `json:"generatedAt"`
	Buckets     []*Bucket `json:"buckets"`
}

// Run verifies the buckets.
func Run(ctx context.Context, c Clients, pol *policy.Policy, opts Options) (*Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	names := opts.Buckets
	if len(names) == 0 && len(pol.Rules) > 0 {
		// Which buckets rules select takes the account's bucket list: the
		// caller reads it (the CLI does), lest the rules' buckets be
		// silently left out.
		return nil, errors.New("the policy selects buckets by rule: name the buckets to verify")
	}
	if len(names) == 0 {
		for name := range pol.Buckets {
			names = append(names, name)
		}
		sortStrings(names)
	}
	switch opts.Source {
	case "", SourceTable, SourceInventory, SourceListing:
	default:
		return nil, fmt.Errorf("source %q: want %s, %s or %s", opts.Source, SourceTable, SourceInventory, SourceListing)
	}
	manifests, err := latestManifests(ctx, c.Files, opts.Inventories)
	if err != nil {
		return nil, err
	}
	if err := findReports(ctx, c, names, opts, manifests); err != nil {
		return nil, err
	}
	res := &Result{GeneratedAt: now().UTC()}
	for _, name := range names {
		target, ok := pol.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("bucket %s is not in the policy", name)
		}
		b, err := verifyBucket(ctx, c, name, target, manifests[name], opts, now)
		if err != nil {
			return nil, fmt.Errorf("verify s3://%s: %w", name, err)
		}
		res.Buckets = append(res.Buckets, b)
	}
	return res, nil
}

// verifyBucket uses the best source available, or the one asked for.
func verifyBucket(ctx context.Context, c Clients, name string, target policy.Bucket, manifest *reportRef, opts Options, now func() time.Time) (*Bucket, error) {
	var fallbacks []string
	if opts.Source == "" || opts.Source == SourceTable {
		b := &Bucket{Bucket: name, owner: target.ExpectedOwner, Source: SourceTable}
		err := fromTable(ctx, c, b, target, opts)
		if err == nil {
			return b, nil
		}
		if opts.Source == SourceTable || !errors.Is(err, metatable.ErrNoTable) {
			return nil, err
		}
		fallbacks = append(fallbacks, err.Error())
	}
	if opts.Source == "" && manifest != nil || opts.Source == SourceInventory {
		if manifest == nil {
			return nil, errors.New("no inventory report given for it (--inventory)")
		}
		b := &Bucket{Bucket: name, owner: target.ExpectedOwner, Source: SourceInventory, Fallbacks: fallbacks}
		if err := fromInventory(ctx, c, b, target, manifest, opts); err != nil {
			return nil, err
		}
		return b, nil
	}
	if opts.Source == "" {
		fallbacks = append(fallbacks, "no S3 Inventory report for it (--inventory, or a complete one under --inventory-bucket)")
	}
	b := &Bucket{Bucket: name, owner: target.ExpectedOwner, Source: SourceListing, Fallbacks: fallbacks, AsOf: now().UTC()}
	if err := fromListing(ctx, c, b, target, opts); err != nil {
		return nil, err
	}
	return b, nil
}
