package emulator

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Quotas are the request rates AWS enforces, scaled as tests need them
// (userguide optimizing-performance: "at least 3,500
// PUT/COPY/POST/DELETE or 5,500 GET/HEAD requests per second per
// partitioned Amazon S3 prefix"; KMS Developer Guide, request quotas:
// cryptographic operations share one rate per account and Region, and
// the calls S3 makes on a caller's behalf count against it). Zero means no
// limit.
type Quotas struct {
	// S3PutPerSecond and S3GetPerSecond apply per partition: the bucket
	// and the key's first path segment (S3 partitions by prefix, which it
	// learns from the traffic; one segment is the emulator's model).
	S3PutPerSecond, S3GetPerSecond float64
	// KMSPerSecond is the account's rate of cryptographic KMS operations,
	// direct (Encrypt, Decrypt, GenerateDataKey) or made by S3 for an
	// UpdateObjectEncryption without a bucket key.
	KMSPerSecond float64
	// Clock is the quotas' clock (nil: time.Now); tests stop it to count
	// exactly.
	Clock func() time.Time
}

// quotaState holds the buckets of the quotas in force.
type quotaState struct {
	mu         sync.Mutex
	q          Quotas
	puts, gets map[string]*core.Quota
	kms        *core.Quota
}

// SetQuotas puts quotas in force (zero values: no limit), starting full.
func (e *Emulator) SetQuotas(q Quotas) {
	e.quotas.mu.Lock()
	defer e.quotas.mu.Unlock()
	e.quotas.q = q
	e.quotas.puts, e.quotas.gets = map[string]*core.Quota{}, map[string]*core.Quota{}
	e.quotas.kms = core.NewQuota(q.KMSPerSecond, q.Clock)
}

// s3Allowed spends one request of the S3 partition's PUT- or GET-class
// rate.
func (e *Emulator) s3Allowed(r *http.Request, bucket, key string) bool {
	s := &e.quotas
	s.mu.Lock()
	rate, pool := s.q.S3PutPerSecond, s.puts
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		rate, pool = s.q.S3GetPerSecond, s.gets
	}
	if rate <= 0 {
		s.mu.Unlock()
		return true
	}
	segment, _, _ := strings.Cut(key, "/")
	partition := bucket + "/" + segment
	q, ok := pool[partition]
	if !ok {
		q = core.NewQuota(rate, s.q.Clock)
		pool[partition] = q
	}
	s.mu.Unlock()
	return q.Take(1)
}

// kmsAllowed spends n requests of the account's KMS rate.
func (e *Emulator) kmsAllowed(n int) bool {
	e.quotas.mu.Lock()
	q := e.quotas.kms
	e.quotas.mu.Unlock()
	return q.Take(float64(n))
}

// kmsCryptoOps are the KMS operations the shared cryptographic rate
// counts.
var kmsCryptoOps = map[string]bool{"Encrypt": true, "Decrypt": true, "GenerateDataKey": true, "ReEncrypt": true}
