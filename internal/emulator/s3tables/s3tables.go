// Package s3tables emulates S3 Metadata live inventory tables: the
// bucket's metadata configuration (CreateBucketMetadataConfiguration,
// GetBucketMetadataConfiguration, DeleteBucketMetadataConfiguration), an
// inventory table kept from the emulated objects within a configurable lag,
// and the S3 Tables Iceberg REST endpoint that serves it, with the table's
// files (metadata JSON, Avro manifest list and manifests, Parquet data) in
// its warehouse bucket.
//
// Modelled on the S3 user guide (metadata-tables-inventory-schema,
// s3-tables-integrating-open-source, s3-system-tables-schema) and the S3
// API reference (CreateBucketMetadataConfiguration,
// GetBucketMetadataConfiguration). Where the emulator is simpler than S3:
// the backfill is immediate (S3 takes at least 15 minutes, the table is
// BACKFILLING meanwhile), each commit rewrites the table as one data file
// and keeps only the current snapshot, and the object_tags and
// user_metadata columns are not written.
package s3tables

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
)

// The names S3 gives the AWS managed table bucket, its namespaces and the
// live inventory table (s3-system-tables-schema: aws-s3 / b_<bucket-name> /
// inventory).
const (
	ManagedTableBucket = "aws-s3"
	NamespacePrefix    = "b_"
	InventoryTable     = "inventory"
)

// Service holds every bucket's metadata configuration and tables.
type Service struct {
	account, region string
	counter         *core.Counter
	// Backfill reads a bucket's versions when its inventory table is
	// made; BucketExists says whether a general purpose bucket exists.
	Backfill     func(bucket string) []s3.ObjectState
	BucketExists func(bucket string) bool

	mu      sync.Mutex
	lag     time.Duration
	now     func() time.Time
	tables  map[string]*table // by source bucket
	byStore map[string]*table // by warehouse bucket name
}

// New makes a service whose tables show each change lag after it happens.
func New(account, region string, counter *core.Counter) *Service {
	return &Service{account: account, region: region, counter: counter, now: time.Now,
		tables: map[string]*table{}, byStore: map[string]*table{}}
}

// SetLag sets how long after a change the inventory tables show it (S3:
// typically within an hour). Changes already shown stay shown.
func (s *Service) SetLag(d time.Duration) {
	s.mu.Lock()
	s.lag = max(d, 0)
	s.mu.Unlock()
}

// TableBucketARN is the ARN of the AWS managed table bucket.
func (s *Service) TableBucketARN() string {
	return "arn:aws:s3tables:" + s.region + ":" + s.account + ":bucket/" + ManagedTableBucket
}

// table is one bucket's live inventory table.
type table struct {
	source    string
	id        string // table UUID
	warehouse string // the bucket holding the table's files
	created   time.Time
	inventory bool // the inventory table is enabled
	journal   journalConfig

	rows    map[string][]row // visible versions, by key
	pending []change         // changes not yet visible, oldest first
	seq     uint64           // last sequence number given
	files   map[string][]byte

	snapshotID   int64
	lastSequence int64
	metadataKey  string
	committedAt  time.Time
	dirty        bool
}

type journalConfig struct {
	expiration string
	days       int
}

// change is the state of one key right after a change, and when it was.
type change struct {
	at       time.Time
	key      string
	versions []s3.ObjectState
}

// row is one version in the inventory table.
type row struct {
	seq uint64
	s3.ObjectState
}

// Watching reports whether a bucket has an inventory table, for s3.Watcher.
func (s *Service) Watching(bucket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[bucket]
	return ok && t.inventory
}

// ObjectChanged records a key's versions after a change, for s3.Watcher.
func (s *Service) ObjectChanged(bucket, key string, versions []s3.ObjectState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tables[bucket]; ok && t.inventory {
		t.pending = append(t.pending, change{at: s.now(), key: key, versions: versions})
	}
}

// apply makes one key's versions the visible rows, keeping the sequence
// number of versions already shown and giving new ones the next.
func (t *table) apply(key string, versions []s3.ObjectState) {
	old := map[string]uint64{}
	for _, r := range t.rows[key] {
		old[r.VersionID] = r.seq
	}
	if len(versions) == 0 {
		delete(t.rows, key)
		t.dirty = true
		return
	}
	rows := make([]row, 0, len(versions))
	// versions come newest first; sequence numbers grow with age reversed.
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		seq, ok := old[v.VersionID]
		if !ok {
			t.seq++
			seq = t.seq
		}
		rows = append(rows, row{seq: seq, ObjectState: v})
	}
	t.rows[key] = rows
	t.dirty = true
}

// backfill shows the versions a bucket held when its table was made
// (every key's versions together, newest first, as s3.Service.Versions
// gives them).
func (t *table) backfill(versions []s3.ObjectState) {
	for start := 0; start < len(versions); {
		end := start
		for end < len(versions) && versions[end].Key == versions[start].Key {
			end++
		}
		t.apply(versions[start].Key, versions[start:end])
		start = end
	}
}

// catchUp applies the changes older than the lag; the caller holds s.mu.
func (s *Service) catchUp(t *table) error {
	cutoff := s.now().Add(-s.lag)
	n := 0
	for n < len(t.pending) && !t.pending[n].at.After(cutoff) {
		t.apply(t.pending[n].key, t.pending[n].versions)
		n++
	}
	t.pending = append(t.pending[:0], t.pending[n:]...)
	if t.dirty || t.metadataKey == "" {
		return s.commit(t)
	}
	return nil
}

// sortedRows returns the visible rows in key order, oldest version first.
func (t *table) sortedRows() []row {
	keys := make([]string, 0, len(t.rows))
	for k := range t.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []row
	for _, k := range keys {
		out = append(out, t.rows[k]...)
	}
	return out
}

// namespace is the table namespace of a source bucket.
func namespace(bucket string) string { return NamespacePrefix + bucket }

// tableByNamespace finds a table by its namespace; the caller holds s.mu.
func (s *Service) tableByNamespace(ns string) (*table, bool) {
	name, ok := strings.CutPrefix(ns, NamespacePrefix)
	if !ok {
		return nil, false
	}
	t, ok := s.tables[name]
	return t, ok && t.inventory
}
