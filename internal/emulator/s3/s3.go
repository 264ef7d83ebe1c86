package s3

import (
	"maps"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"
	"github.com/s3rekey/s3rekey/internal/emulator/sqs"

	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	versioningEnabled   = "Enabled"
	versioningSuspended = "Suspended"
	nullVersion         = "null"
	maxObjectSize       = 64 << 20 // in-memory store: large enough for inventory files
	maxConfigBody       = 1 << 20
)

type bucketEncryption struct {
	algorithm string // AES256, aws:kms, aws:kms:dsse
	kmsKeyID  string // as given; S3 does not validate it for general purpose buckets
	bucketKey bool
	// blocked are the BlockedEncryptionTypes (SSE-C or NONE), stored and
	// returned as put; the emulator does not refuse SSE-C writes for them.
	blocked []string
}

type queueConfig struct {
	ID, QueueARN   string
	Events         []string
	Prefix, Suffix string
}

type lockRule struct {
	mode string
	days int
}

type bucket struct {
	name       string
	created    time.Time
	versioning string // "", Enabled, Suspended
	objectLock bool
	lockRule   *lockRule
	encryption *bucketEncryption // nil: the default SSE-S3
	policy     *iam.Policy       // the bucket policy; nil when none is set
	policyDoc  []byte
	queues     []queueConfig
	eventBrdg  bool
	directory  bool
	tags       map[string]string // bucket tags
	// inventories are the inventory configurations by id, as put.
	inventories map[string][]byte
	replication []byte // the replication configuration as put
	ownership   string // Object Ownership: BucketOwnerEnforced (ACLs disabled), BucketOwnerPreferred, ObjectWriter
	sequencer   uint64

	uploads    map[string]*upload          // multipart uploads in progress, by id
	objects    map[string][]*objectVersion // newest last
	sortedKeys []string
	keysDirty  bool
}

type objectVersion struct {
	key, versionID string
	deleteMarker   bool
	lastModified   time.Time
	size           int64
	etag           string
	storageClass   string
	contentType    string
	headers        map[string]string // Content-Encoding, Cache-Control, …
	metadata       map[string]string // x-amz-meta-*
	checksumAlg    string
	checksum       string
	checksumType   string       // FULL_OBJECT, or COMPOSITE for a multipart upload's
	parts          []objectPart // a multipart upload's parts; nil for a single PUT
	env            envelope
	ciphertext     []byte
	lockMode       string
	retainUntil    time.Time
	legalHold      bool
	eventHold      bool // an Object Lock event hold in force (x-amz-object-lock-event-hold: ON)
	tags           map[string]string
	annotations    map[string][]byte // name → payload (PutObjectAnnotation)
}

// objectPart is one part of an object assembled by multipart upload.
type objectPart struct {
	number   int
	size     int64
	checksum string
}

// current returns the newest version of a key, or nil.
func (b *bucket) current(key string) *objectVersion {
	vs := b.objects[key]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

func (b *bucket) version(key, id string) *objectVersion {
	for _, v := range b.objects[key] {
		if v.versionID == id {
			return v
		}
	}
	return nil
}

// keys returns every key in lexical order, sorted lazily after changes.
func (b *bucket) keys() []string {
	if b.keysDirty {
		b.sortedKeys = b.sortedKeys[:0]
		for k := range b.objects {
			b.sortedKeys = append(b.sortedKeys, k)
		}
		sort.Strings(b.sortedKeys)
		b.keysDirty = false
	}
	return b.sortedKeys
}

// addVersion stores a new version as the current one. In an unversioned or
// suspended bucket it replaces the "null" version.
func (b *bucket) addVersion(v *objectVersion) {
	vs := b.objects[v.key]
	if v.versionID == nullVersion {
		kept := vs[:0]
		for _, old := range vs {
			if old.versionID != nullVersion {
				kept = append(kept, old)
			}
		}
		vs = kept
	}
	if len(vs) == 0 {
		b.keysDirty = true
	}
	b.objects[v.key] = append(vs, v)
}

func (b *bucket) removeVersion(key, id string) {
	vs := b.objects[key]
	for i, v := range vs {
		if v.versionID == id {
			vs = append(vs[:i], vs[i+1:]...)
			break
		}
	}
	if len(vs) == 0 {
		delete(b.objects, key)
		b.keysDirty = true
		return
	}
	b.objects[key] = vs
}

func (b *bucket) newVersionID() string {
	if b.versioning == versioningEnabled {
		return newVersionID()
	}
	return nullVersion
}

// newVersionID looks like S3's: 32 URL-safe characters.
func newVersionID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
	raw := core.NewID(24)
	out := make([]byte, 32)
	for i := range out {
		out[i] = alphabet[(int(raw[i])*7+int(raw[i+16]))%len(alphabet)]
	}
	return string(out)
}

type Service struct {
	account, region string
	// policies are the buckets' policies under their own lock: the
	// authorizer reads them while operations hold mu, and a read lock of
	// mu taken twice deadlocks once a writer waits between the two.
	policyMu  sync.RWMutex
	policies  map[string]*iam.Policy
	kms       *kms.Service
	sqs       *sqs.Service
	rules     func() []EventBridgeRule
	counter   *core.Counter
	masterKey []byte
	// Authorize decides the permissions an operation checks itself; nil
	// allows everything.
	Authorize Authorizer
	// KMSQuota spends n requests of the account's KMS rate for the calls S3
	// makes on a caller's behalf; nil is no limit.
	KMSQuota func(n int) bool
	// EventBridgeRawKeys writes EventBridge object keys as they are
	// instead of form-encoded (AWS documents neither).
	EventBridgeRawKeys bool
	// Watcher, when set, is told of every change to an object's versions.
	Watcher Watcher
	// OrganizationKeys is AWS Support's approval for the account to use
	// KMS keys of its organization's other accounts in
	// UpdateObjectEncryption (orgkeys.go).
	OrganizationKeys atomic.Bool
	// ForeignKMS is the KMS of another account, nil when it is unknown;
	// Organization tells the organization of an account. Both are set in
	// an organization of accounts.
	ForeignKMS   func(account string) *kms.Service
	Organization OrganizationInfo
	// OverwriteOnUpdateEncryption answers UpdateObjectEncryption as a
	// server that is not S3 does: it overwrites the object (keystate.go).
	OverwriteOnUpdateEncryption atomic.Bool

	mu      sync.RWMutex
	buckets map[string]*bucket
}

func New(account, region string, kms *kms.Service, sqs *sqs.Service, rules func() []EventBridgeRule, counter *core.Counter) *Service {
	return &Service{
		account: account, region: region, kms: kms, sqs: sqs, rules: rules, counter: counter,
		masterKey: newDataKey(), buckets: map[string]*bucket{},
	}
}

// s3Handler serves one S3 operation; it writes its own success answer.
type s3Handler func(w http.ResponseWriter, r *http.Request, bucket, key string) *core.Error

// route names the S3 operation of a request and returns its handler.
func (s *Service) Route(r *http.Request, bucketName, key string) (string, s3Handler) {
	q := r.URL.Query()
	q.Del("x-id") // the SDK names the operation here; routing does not need it
	has := func(name string) bool { _, ok := q[name]; return ok }
	if bucketName == "" {
		if r.Method == http.MethodGet {
			return "ListBuckets", s.listBuckets
		}
		return "", nil
	}
	if key == "" {
		if has("policy") {
			return s.policyRoute(r.Method)
		}
		switch r.Method {
		case http.MethodPut:
			switch {
			case has("versioning"):
				return "PutBucketVersioning", s.putBucketVersioning
			case has("encryption"):
				return "PutBucketEncryption", s.putBucketEncryption
			case has("tagging"):
				return "PutBucketTagging", s.putBucketTagging
			case has("replication"):
				return "PutBucketReplication", s.putBucketReplication
			case has("inventory"):
				return "PutBucketInventoryConfiguration", s.putBucketInventoryConfiguration
			case has("notification"):
				return "PutBucketNotificationConfiguration", s.putBucketNotification
			case has("object-lock"):
				return "PutObjectLockConfiguration", s.putObjectLockConfiguration
			case has("ownershipControls"):
				return "PutBucketOwnershipControls", s.putBucketOwnershipControls
			case len(q) == 0:
				return "CreateBucket", s.createBucket
			}
		case http.MethodGet:
			switch {
			case has("versioning"):
				return "GetBucketVersioning", s.getBucketVersioning
			case has("encryption"):
				return "GetBucketEncryption", s.getBucketEncryption
			case has("tagging"):
				return "GetBucketTagging", s.getBucketTagging
			case has("replication"):
				return "GetBucketReplication", s.getBucketReplication
			case has("inventory") && q.Get("id") != "":
				return "GetBucketInventoryConfiguration", s.getBucketInventoryConfiguration
			case has("notification"):
				return "GetBucketNotificationConfiguration", s.getBucketNotification
			case has("object-lock"):
				return "GetObjectLockConfiguration", s.getObjectLockConfiguration
			case has("location"):
				return "GetBucketLocation", s.getBucketLocation
			case has("ownershipControls"):
				return "GetBucketOwnershipControls", s.getBucketOwnershipControls
			case has("session"):
				return "CreateSession", s.createSession
			case has("versions"):
				return "ListObjectVersions", s.listObjectVersions
			case has("uploads"):
				return "ListMultipartUploads", s.listMultipartUploads
			case q.Get("list-type") == "2":
				return "ListObjectsV2", s.listObjectsV2
			case onlyListV1Params(q):
				return "ListObjects", s.listObjects
			}
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects", s.deleteObjects
			}
		case http.MethodHead:
			return "HeadBucket", s.headBucket
		case http.MethodDelete:
			if has("encryption") {
				return "DeleteBucketEncryption", s.deleteBucketEncryption
			}
			if has("tagging") {
				return "DeleteBucketTagging", s.deleteBucketTagging
			}
			if has("inventory") {
				return "DeleteBucketInventoryConfiguration", s.deleteBucketInventoryConfiguration
			}
			if len(q) == 0 {
				return "DeleteBucket", s.deleteBucket
			}
		}
		return "", nil
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case has("encryption"):
			if s.OverwriteOnUpdateEncryption.Load() {
				return "UpdateObjectEncryption", s.overwritingUpdateEncryption
			}
			return "UpdateObjectEncryption", s.updateObjectEncryption
		case has("retention"):
			return "PutObjectRetention", s.putObjectRetention
		case has("legal-hold"):
			return "PutObjectLegalHold", s.putObjectLegalHold
		case has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
			return "UploadPartCopy", s.uploadPartCopy
		case has("uploadId"):
			return "UploadPart", s.uploadPart
		case has("tagging"):
			return "PutObjectTagging", s.putObjectTagging
		case has("annotation"):
			return "PutObjectAnnotation", s.putObjectAnnotation
		case has("acl"):
			return "", nil
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject", s.copyObject
		default:
			return "PutObject", s.putObject
		}
	case http.MethodGet:
		switch {
		case has("retention"):
			return "GetObjectRetention", s.getObjectRetention
		case has("legal-hold"):
			return "GetObjectLegalHold", s.getObjectLegalHold
		case has("uploadId"):
			return "ListParts", s.listParts
		case has("attributes"):
			return "GetObjectAttributes", s.getObjectAttributes
		case has("tagging"):
			return "GetObjectTagging", s.getObjectTagging
		case has("annotation") && !has("annotationName"):
			return "ListObjectAnnotations", s.listObjectAnnotations
		case has("acl"):
			return "", nil
		default:
			return "GetObject", s.getObject
		}
	case http.MethodHead:
		return "HeadObject", s.headObject
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload", s.createMultipartUpload
		case has("uploadId"):
			return "CompleteMultipartUpload", s.completeMultipartUpload
		}
	case http.MethodDelete:
		if has("uploadId") {
			return "AbortMultipartUpload", s.abortMultipartUpload
		}
		if len(q) == 0 || has("versionId") {
			return "DeleteObject", s.deleteObject
		}
	}
	return "", nil
}

// onlyListV1Params reports a GET Bucket (ListObjects, version 1): no
// subresource, only its own parameters.
func onlyListV1Params(q url.Values) bool {
	for name := range q {
		switch name {
		case "prefix", "delimiter", "marker", "max-keys", "encoding-type":
		default:
			return false
		}
	}
	return true
}

// SplitPath reads bucket and key from a path-style request, keeping the key
// exactly as sent (no path cleaning: "a//b" and "./x" are valid keys).
func SplitPath(r *http.Request) (bucketName, key string, err error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	b, k, _ := strings.Cut(raw, "/")
	if bucketName, err = url.PathUnescape(b); err != nil {
		return "", "", err
	}
	if key, err = url.PathUnescape(k); err != nil {
		return "", "", err
	}
	return bucketName, key, nil
}

func errNoSuchBucket() *core.Error {
	return core.Errorf(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
}

func errNoSuchKey() *core.Error {
	return core.Errorf(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
}

// bucketLocked returns a bucket; callers hold s.mu.
func (s *Service) bucketLocked(name string) (*bucket, *core.Error) {
	b, ok := s.buckets[name]
	if !ok {
		return nil, errNoSuchBucket()
	}
	return b, nil
}

var (
	bucketNamePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	directoryNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*--[a-z0-9-]+--x-s3$`)
)

// isDirectoryBucketName reports an S3 Express One Zone directory bucket name.
func isDirectoryBucketName(name string) bool { return strings.HasSuffix(name, "--x-s3") }

// lookupObject finds the version a request names (the current one when
// versionID is empty). A delete marker comes back as found; callers decide.
func (b *bucket) lookupObject(key, versionID string) (*objectVersion, *core.Error) {
	if versionID == "" {
		v := b.current(key)
		if v == nil {
			return nil, errNoSuchKey()
		}
		return v, nil
	}
	if versionID != nullVersion && len(versionID) < 8 {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Invalid version id specified")
	}
	v := b.version(key, versionID)
	if v == nil {
		return nil, core.Errorf(http.StatusNotFound, "NoSuchVersion", "The specified version does not exist.")
	}
	return v, nil
}

// ObjectState is what Inspect reports of one stored object version: the
// stored bytes and the protection of their data key, for tests that must
// prove what UpdateObjectEncryption kept and changed.
type ObjectState struct {
	Key          string
	IsLatest     bool
	VersionID    string
	DeleteMarker bool
	Encryption   string // NOT-SSE, SSE-S3, SSE-KMS, DSSE-KMS, SSE-C
	KMSKeyARN    string
	BucketKey    bool
	Ciphertext   []byte // stored bytes (the plaintext for NOT-SSE)
	WrappedKey   []byte
	ETag         string
	LastModified time.Time
	StorageClass string
	Checksum     string
	Metadata     map[string]string
	LockMode     string
	RetainUntil  time.Time
	LegalHold    bool
	Tags         map[string]string
	Size         int64
	Multipart    bool
}

// Inspect returns a copy of a stored version (versionID "" = current),
// reading the store directly, not through the API, and counting nothing.
func (s *Service) Inspect(bucketName, key, versionID string) (ObjectState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return ObjectState{}, false
	}
	v, apiErr := b.lookupObject(key, versionID)
	if apiErr != nil {
		return ObjectState{}, false
	}
	return stateOf(v, b.current(key) == v), true
}

// Versions returns every version of a bucket, delete markers included, in
// key order and newest first, read directly from the store.
func (s *Service) Versions(bucketName string) []ObjectState {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil
	}
	var out []ObjectState
	for _, key := range b.keys() {
		vs := b.objects[key]
		for i := len(vs) - 1; i >= 0; i-- {
			out = append(out, stateOf(vs[i], i == len(vs)-1))
		}
	}
	return out
}

func stateOf(v *objectVersion, latest bool) ObjectState {
	meta := make(map[string]string, len(v.metadata))
	for k, val := range v.metadata {
		meta[k] = val
	}
	return ObjectState{
		Key: v.key, IsLatest: latest,
		VersionID: v.versionID, DeleteMarker: v.deleteMarker, Encryption: string(v.env.kind),
		KMSKeyARN: v.env.kmsKeyARN, BucketKey: v.env.bucketKey,
		Ciphertext: append([]byte(nil), v.ciphertext...), WrappedKey: append([]byte(nil), v.env.wrappedKey...),
		ETag: v.etag, LastModified: v.lastModified, StorageClass: v.storageClass, Checksum: v.checksum,
		Metadata: meta, LockMode: v.lockMode, RetainUntil: v.retainUntil, LegalHold: v.legalHold, Tags: maps.Clone(v.tags),
		Size: v.size, Multipart: len(v.parts) > 0,
	}
}
