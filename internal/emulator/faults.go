package emulator

import (
	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Fault makes a share of the requests of one operation fail with an error
// code, before the operation runs (so a failed request changes nothing).
type Fault = core.Fault

// Latency delays the requests of one operation.
type Latency = core.Latency

// Count is the number of requests of one operation (see core.Count).
type Count = core.Count

// ParseFault reads the flag form SERVICE:OPERATION=CODE:RATE, for example
// "s3:UpdateObjectEncryption=SlowDown:0.05".
func ParseFault(s string) (Fault, error) { return core.ParseFault(s) }

// ParseLatency reads the flag form SERVICE:OPERATION=DURATION.
func ParseLatency(s string) (Latency, error) { return core.ParseLatency(s) }

// SetFault adds a fault, or replaces the one with the same target and code.
// A rate of 0 removes it.
func (e *Emulator) SetFault(f Fault) error { return e.faults.Set(f) }

// ClearFaults removes every fault, duplicate delivery included.
func (e *Emulator) ClearFaults() {
	e.faults.Clear()
	e.SetDuplicateDelivery(0)
}

// SetDuplicateDelivery makes SQS deliver a share of messages a second
// time: the first successful delete of such a message is lost, and the
// message is received again (with a new receipt handle and a higher receive
// count), as at-least-once delivery allows.
func (e *Emulator) SetDuplicateDelivery(rate float64) { e.sqs.SetDuplicateRate(rate) }

// SetLatency sets the delay of one target; zero removes it.
func (e *Emulator) SetLatency(l Latency) { e.faults.SetLatency(l) }

// Counts returns the request counts so far, sorted by service, operation and
// bucket.
func (e *Emulator) Counts() []Count { return e.counter.Counts() }

// CountOf sums the requests of one service and operation over all buckets;
// bucket "" means any bucket.
func (e *Emulator) CountOf(service, op, bucket string) int64 {
	return e.counter.CountOf(service, op, bucket)
}

// ResetCounts sets every counter back to zero.
func (e *Emulator) ResetCounts() {
	e.counter.Reset()
	e.sqs.ResetBilled()
}

// BilledSQSRequests is the number of SQS requests as SQS bills them (one
// per started 64 KiB of payload), for the cost model.
func (e *Emulator) BilledSQSRequests() int64 { return e.sqs.Billed() }

// Capacity is DynamoDB request units consumed.
type Capacity struct{ Read, Write float64 }

// CapacityUnits is the DynamoDB capacity consumed so far, in request units
// as on-demand tables bill them.
func (e *Emulator) CapacityUnits() Capacity {
	return Capacity{Read: float64(e.counter.CountOf("dynamodb", core.ReadRequestHalfUnits, "")) / 2,
		Write: float64(e.counter.CountOf("dynamodb", core.WriteRequestUnits, ""))}
}
