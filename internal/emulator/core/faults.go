package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault makes a share of the requests of one operation fail with an error
// code, before the operation runs (so a failed request changes nothing).
type Fault struct {
	Service   string  // "s3", "sqs", "kms" or "*"
	Operation string  // e.g. "UpdateObjectEncryption", or "*"
	Code      string  // an error code of faultStatus
	Rate      float64 // 0..1
}

// faultStatus lists the codes a fault may inject, with their HTTP status.
var faultStatus = map[string]int{
	"SlowDown":            http.StatusServiceUnavailable,
	"ServiceUnavailable":  http.StatusServiceUnavailable,
	"InternalError":       http.StatusInternalServerError,
	"AccessDenied":        http.StatusForbidden,
	"ThrottlingException": http.StatusBadRequest,
	"RequestThrottled":    http.StatusBadRequest,
}

// ParseFault reads the flag form SERVICE:OPERATION=CODE:RATE, for example
// "s3:UpdateObjectEncryption=SlowDown:0.05" or "sqs:*=ThrottlingException:0.01".
func ParseFault(s string) (Fault, error) {
	target, spec, ok := strings.Cut(s, "=")
	if !ok {
		return Fault{}, fmt.Errorf("fault %q: want SERVICE:OPERATION=CODE:RATE", s)
	}
	service, op, err := parseTarget(target)
	if err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	code, rateText, ok := strings.Cut(spec, ":")
	if !ok {
		return Fault{}, fmt.Errorf("fault %q: want CODE:RATE after '='", s)
	}
	rate, err := strconv.ParseFloat(rateText, 64)
	if err != nil || rate < 0 || rate > 1 {
		return Fault{}, fmt.Errorf("fault %q: rate %q must be a number from 0 to 1", s, rateText)
	}
	f := Fault{Service: service, Operation: op, Code: code, Rate: rate}
	return f, f.validate()
}

func (f Fault) validate() error {
	if _, ok := faultStatus[f.Code]; !ok {
		codes := make([]string, 0, len(faultStatus))
		for c := range faultStatus {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		return fmt.Errorf("fault code %q is not one of %s", f.Code, strings.Join(codes, ", "))
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("fault rate %v must be from 0 to 1", f.Rate)
	}
	return nil
}

// Latency adds a delay before every request of one operation.
type Latency struct {
	Service   string
	Operation string
	Delay     time.Duration
}

// ParseLatency reads the flag form SERVICE:OPERATION=DURATION, for example
// "s3:*=20ms".
func ParseLatency(s string) (Latency, error) {
	target, d, ok := strings.Cut(s, "=")
	if !ok {
		return Latency{}, fmt.Errorf("latency %q: want SERVICE:OPERATION=DURATION", s)
	}
	service, op, err := parseTarget(target)
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w", s, err)
	}
	delay, err := time.ParseDuration(d)
	if err != nil || delay < 0 {
		return Latency{}, fmt.Errorf("latency %q: %q is not a duration such as 20ms", s, d)
	}
	return Latency{Service: service, Operation: op, Delay: delay}, nil
}

func parseTarget(s string) (service, op string, err error) {
	service, op, ok := strings.Cut(s, ":")
	if !ok || op == "" {
		return "", "", fmt.Errorf("target %q: want SERVICE:OPERATION (OPERATION may be *)", s)
	}
	switch service {
	case "s3", "sqs", "kms", "*":
	default:
		return "", "", fmt.Errorf("service %q is not s3, sqs, kms or *", service)
	}
	return service, op, nil
}

type opKey struct{ service, op string }

// Faults holds the faults and latencies; the most specific entry wins
// (service+operation, then service+*, then *+*).
type Faults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	faults map[opKey][]Fault
	delays map[opKey]time.Duration
}

func NewFaults(seed uint64) *Faults {
	if seed == 0 {
		seed = 0x5eed
	}
	return &Faults{
		rng:    rand.New(rand.NewPCG(seed, seed>>1|1)),
		faults: map[opKey][]Fault{},
		delays: map[opKey]time.Duration{},
	}
}

func lookupOrder(service, op string) [3]opKey {
	return [3]opKey{{service, op}, {service, "*"}, {"*", "*"}}
}

// Inject draws against every matching fault (service+operation,
// service+*, *+*), in that order; the first that fires answers.
func (fi *Faults) Inject(service, op string) *Error {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if len(fi.faults) == 0 {
		return nil
	}
	for _, k := range lookupOrder(service, op) {
		for _, f := range fi.faults[k] {
			if f.Rate > 0 && fi.rng.Float64() < f.Rate {
				return &Error{
					Status:  faultStatus[f.Code],
					Code:    f.Code,
					Message: "injected fault: " + f.Code,
				}
			}
		}
	}
	return nil
}

// Draw reports true with probability rate, from the seeded source.
func (fi *Faults) Draw(rate float64) bool {
	if rate <= 0 {
		return false
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.rng.Float64() < rate
}

func (fi *Faults) Latency(service, op string) time.Duration {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	for _, k := range lookupOrder(service, op) {
		if d, ok := fi.delays[k]; ok {
			return d
		}
	}
	return 0
}

// Set adds a fault, or replaces the one with the same target and code. A
// rate of 0 removes it.
func (fi *Faults) Set(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	k := opKey{f.Service, f.Operation}
	kept := fi.faults[k][:0:0]
	for _, old := range fi.faults[k] {
		if old.Code != f.Code {
			kept = append(kept, old)
		}
	}
	if f.Rate > 0 {
		kept = append(kept, f)
	}
	if len(kept) == 0 {
		delete(fi.faults, k)
	} else {
		fi.faults[k] = kept
	}
	return nil
}

// Clear removes every fault.
func (fi *Faults) Clear() {
	fi.mu.Lock()
	clear(fi.faults)
	fi.mu.Unlock()
}

// SetLatency sets the delay of one target; zero removes it.
func (fi *Faults) SetLatency(l Latency) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	k := opKey{l.Service, l.Operation}
	if l.Delay <= 0 {
		delete(fi.delays, k)
		return
	}
	fi.delays[k] = l.Delay
}

// Counts returns the request counts so far, sorted by service, operation
// and bucket.
func (c *Counter) Counts() []Count {
	c.mu.Lock()
	out := make([]Count, 0, len(c.counts))
	for k, n := range c.counts {
		out = append(out, Count{Service: k.service, Operation: k.op, Bucket: k.bucket, N: n})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Operation != b.Operation {
			return a.Operation < b.Operation
		}
		return a.Bucket < b.Bucket
	})
	return out
}

// CountOf sums the requests of one service and operation over all
// buckets; bucket "" means any bucket.
func (c *Counter) CountOf(service, op, bucket string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, v := range c.counts {
		if k.service == service && k.op == op && (bucket == "" || k.bucket == bucket) {
			n += v
		}
	}
	return n
}

// Reset sets every counter back to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	clear(c.counts)
	c.mu.Unlock()
}

// Count is the number of requests of one operation. Bucket is set for S3
// requests, and for the KMS calls S3 makes on the caller's behalf (an
// UpdateObjectEncryption or an upload under SSE-KMS), which are billed to
// the bucket owner like any other KMS request.
type Count struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Bucket    string `json:"bucket,omitempty"`
	N         int64  `json:"n"`
}

type countKey struct{ service, op, bucket string }

// Counter counts requests per service, operation and bucket.
type Counter struct {
	mu     sync.Mutex
	counts map[countKey]int64
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{counts: map[countKey]int64{}} }

// Capacity pseudo-operations of the "dynamodb" service in Counts: the
// request units the requests consumed, reads counted in half units (an
// eventually consistent read of up to 4 KB is half a unit).
const (
	ReadRequestHalfUnits = "ReadRequestHalfUnits"
	WriteRequestUnits    = "WriteRequestUnits"
)

// AddCapacity counts DynamoDB request units.
func (c *Counter) AddCapacity(readUnits, writeUnits float64) {
	c.mu.Lock()
	c.counts[countKey{"dynamodb", ReadRequestHalfUnits, ""}] += int64(math.Round(readUnits * 2))
	c.counts[countKey{"dynamodb", WriteRequestUnits, ""}] += int64(math.Round(writeUnits))
	c.mu.Unlock()
}

// Add counts one request.
func (c *Counter) Add(service, op, bucket string) {
	c.mu.Lock()
	c.counts[countKey{service, op, bucket}]++
	c.mu.Unlock()
}
