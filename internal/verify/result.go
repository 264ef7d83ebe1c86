package verify

import (
	"sort"
	"time"

	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Sources, best first.
const (
	SourceTable     = "metadata-table"
	SourceInventory = "inventory+head"
	SourceListing   = "listing+head"
)

// Verdicts of one version.
const (
	Compliant    = "compliant"
	NonCompliant = "non-compliant"
	// Exempt versions are outside the policy: a prefix it leaves out, or a
	// noncurrent version of a bucket whose policy covers current ones.
	Exempt = "exempt"
	// Unknown versions are SSE-KMS with no key ARN in the source.
	Unknown = "unknown"
)

// Encryption labels, as S3 Metadata and S3 Inventory name them (and
// package rekey).
const (
	EncNone   = rekey.EncNone
	EncSSES3  = rekey.EncS3
	EncSSEKMS = rekey.EncKMS
	EncDSSE   = rekey.EncDSSE
	EncSSEC   = rekey.EncC
)

// Version is one object version and its verdict.
type Version struct {
	Key          string    `json:"key"`
	VersionID    string    `json:"versionId,omitempty"`
	Latest       bool      `json:"latest"`
	Encryption   string    `json:"encryption"`
	KMSKeyARN    string    `json:"kmsKeyArn,omitempty"`
	BucketKey    bool      `json:"bucketKey"`
	LastModified time.Time `json:"lastModified,omitzero"`
	Verdict      string    `json:"verdict"`
	Reason       string    `json:"reason,omitempty"`
}

// KeyCount is how many versions are under one key (or encryption).
type KeyCount struct {
	// Key is the KMS key ARN, or the encryption for versions under none
	// (SSE-S3, NOT-SSE, SSE-C), or "unknown" for SSE-KMS without an ARN.
	Key          string `json:"key"`
	Encryption   string `json:"encryption"`
	Versions     int64  `json:"versions"`
	Compliant    int64  `json:"compliant"`
	NonCompliant int64  `json:"nonCompliant"`
	Exempt       int64  `json:"exempt"`
	Unknown      int64  `json:"unknown"`
}

// Requests counts what a verification asked of AWS.
type Requests struct {
	Head       int64 `json:"head"`       // HeadObject: object requests
	List       int64 `json:"list"`       // ListObjectVersions pages
	TableFiles int64 `json:"tableFiles"` // table files read (S3 Tables)
	Catalog    int64 `json:"catalog"`    // Iceberg REST and metadata configuration calls
	Report     int64 `json:"report"`     // inventory report files read
}

// Bucket is the verification of one bucket.
type Bucket struct {
	Bucket string `json:"bucket"`
	Source string `json:"source"`
	// SourceRef names what was read: the table and snapshot, the manifest.
	SourceRef string `json:"sourceRef"`
	// owner is the account expected to own the bucket (the policy's
	// expectedOwner): every request to it names the owner.
	owner string
	// AsOf is the source's time: the snapshot's commit, the report's
	// creation, the listing's start.
	AsOf time.Time `json:"asOf"`
	// Fallbacks says why better sources were not used.
	Fallbacks     []string   `json:"fallbacks,omitempty"`
	TargetKey     string     `json:"targetKey"`
	BucketKey     bool       `json:"targetBucketKey"`
	Versions      int64      `json:"versions"`
	DeleteMarkers int64      `json:"deleteMarkers"`
	Compliant     int64      `json:"compliant"`
	NonCompliant  int64      `json:"nonCompliant"`
	Exempt        int64      `json:"exempt"`
	Unknown       int64      `json:"unknown"`
	ByKey         []KeyCount `json:"byKey"`
	// Listed are the non-compliant and unknown versions, or every version
	// when all were asked for.
	Listed []Version `json:"versionsListed"`
	// NotSeen says what the source could not see.
	NotSeen []string `json:"notSeen"`
	// Recent are versions a listing found that the table does not have
	// (written after its snapshot), and GoneSinceSnapshot versions the
	// table has that the listing no longer found; set when asked for.
	Recent            []Version `json:"recentNotInTable,omitempty"`
	GoneSinceSnapshot []Version `json:"goneSinceSnapshot,omitempty"`
	RecentChecked     bool      `json:"recentChecked"`
	// RecentKeysRead says the recent versions were read with a HEAD and
	// are counted with the others.
	RecentKeysRead bool     `json:"recentKeysRead"`
	Requests       Requests `json:"requests"`
}

// tally accumulates a bucket's verdicts.
type tally struct {
	b         *Bucket
	target    policy.Bucket
	all       bool
	listUnder string // also list every version under this key
	byKey     map[string]*KeyCount
}

func newTally(b *Bucket, target policy.Bucket, opts Options) *tally {
	b.TargetKey, b.BucketKey = target.KMSKeyARN, target.BucketKeyEnabled
	return &tally{b: b, target: target, all: opts.All, listUnder: opts.ListUnder, byKey: map[string]*KeyCount{}}
}

// classify gives a version's verdict under the bucket's target.
func classify(target policy.Bucket, v Version) (verdict, reason string) {
	switch {
	case !target.InScope(v.Key):
		return Exempt, "outside the policy's prefixes"
	case !v.Latest && target.Versions != policy.VersionsAll:
		return Exempt, "noncurrent; the policy covers current versions"
	case v.Encryption == EncSSEKMS && v.KMSKeyARN == "":
		return Unknown, "SSE-KMS, but the source gives no key ARN"
	case v.Encryption == EncSSEKMS && v.KMSKeyARN == target.KMSKeyARN && v.BucketKey == target.BucketKeyEnabled:
		return Compliant, ""
	case v.Encryption == EncSSEKMS && v.KMSKeyARN == target.KMSKeyARN:
		if target.BucketKeyEnabled {
			return NonCompliant, "under the target key without a bucket key; the policy wants one"
		}
		return NonCompliant, "under the target key with a bucket key; the policy wants none"
	case v.Encryption == EncSSEKMS || v.Encryption == EncDSSE:
		return NonCompliant, v.Encryption + " under " + v.KMSKeyARN
	default:
		return NonCompliant, v.Encryption
	}
}

// keyLabel is the ByKey entry of a version.
func keyLabel(v Version) string {
	if v.Encryption == EncSSEKMS || v.Encryption == EncDSSE {
		if v.KMSKeyARN == "" {
			return Unknown
		}
		return v.KMSKeyARN
	}
	return v.Encryption
}

// add counts one version (not a delete marker).
func (t *tally) add(v Version) {
	v.Verdict, v.Reason = classify(t.target, v)
	t.b.Versions++
	label := keyLabel(v)
	kc := t.byKey[label+"\x00"+v.Encryption]
	if kc == nil {
		kc = &KeyCount{Key: label, Encryption: v.Encryption}
		t.byKey[label+"\x00"+v.Encryption] = kc
	}
	kc.Versions++
	switch v.Verdict {
	case Compliant:
		t.b.Compliant++
		kc.Compliant++
	case NonCompliant:
		t.b.NonCompliant++
		kc.NonCompliant++
	case Exempt:
		t.b.Exempt++
		kc.Exempt++
	case Unknown:
		t.b.Unknown++
		kc.Unknown++
	}
	if t.all || v.Verdict == NonCompliant || v.Verdict == Unknown || t.listUnder != "" && v.KMSKeyARN == t.listUnder {
		t.b.Listed = append(t.b.Listed, v)
	}
}

// finish sorts the counts and the listed versions.
func (t *tally) finish() {
	t.b.ByKey = t.b.ByKey[:0]
	for _, kc := range t.byKey {
		t.b.ByKey = append(t.b.ByKey, *kc)
	}
	sort.Slice(t.b.ByKey, func(i, j int) bool {
		a, b := t.b.ByKey[i], t.b.ByKey[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Encryption < b.Encryption
	})
	sortVersions(t.b.Listed)
}

func sortVersions(vs []Version) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Key != vs[j].Key {
			return vs[i].Key < vs[j].Key
		}
		return vs[i].VersionID < vs[j].VersionID
	})
}

// VersionsUnder counts the versions under a key ARN in the result, every
// version and encryption (DSSE-KMS too) counted; unknown counts the
// versions whose key the source did not give.
func (b *Bucket) VersionsUnder(keyARN string) (under, unknown int64) {
	for _, kc := range b.ByKey {
		switch kc.Key {
		case keyARN:
			under += kc.Versions
		case Unknown:
			unknown += kc.Versions
		}
	}
	return under, unknown
}
