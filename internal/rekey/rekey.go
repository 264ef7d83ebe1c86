package rekey

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// HeadObjectAPI reads an object's metadata (never its data).
type HeadObjectAPI interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// UpdateObjectEncryptionAPI changes an object's encryption in place.
type UpdateObjectEncryptionAPI interface {
	UpdateObjectEncryption(ctx context.Context, in *s3.UpdateObjectEncryptionInput, optFns ...func(*s3.Options)) (*s3.UpdateObjectEncryptionOutput, error)
}

// Pacer holds the policy's budgets across the deployment (budget.Pacer in
// production): Wait returns when n requests of scope may start under a
// budget of perSecond (0: none).
type Pacer interface {
	Wait(ctx context.Context, scope string, perSecond float64, n int) error
}

// Taker counts requests against a budget without waiting for it
// (budget.Pacer): an upload's object against its bucket's budget.
type Taker interface {
	Take(ctx context.Context, scope string, perSecond float64, n int) error
}

var (
	_ HeadObjectAPI             = (*s3.Client)(nil)
	_ UpdateObjectEncryptionAPI = (*s3.Client)(nil)
	_ Pacer                     = (*budget.Pacer)(nil)
	_ Taker                     = (*budget.Pacer)(nil)
)

// Budget scopes: one per bucket for objects a second, one for the
// account's KMS requests.
const ScopeKMS = "kms"

// ScopeBucket is the scope of a bucket's budget of objects a second.
func ScopeBucket(name string) string { return "bucket/" + name }

// Rekeyer brings objects onto their policy's target key.
type Rekeyer struct {
	Head   HeadObjectAPI
	Update UpdateObjectEncryptionAPI
	Policy *policy.Policy
	// Source, when set, gives the policy per object instead of Policy: the
	// one whose aliases were resolved last (see internal/keyalias).
	Source policy.Source
	// Now is the clock for Object Lock dates; nil means time.Now.
	Now func() time.Time
	// HeadBeforeUpdate makes every update follow a HEAD, even where the
	// inventory proves SSE-S3. It costs a HEAD per such object ($0.40 per
	// million) and buys the guarantee that no update reaches an object
	// already compliant, however SQS duplicates deliveries.
	HeadBeforeUpdate bool
	// Copier copies in place the sources a bucket opted in for; nil means
	// no copies (such objects fail with a reason).
	Copier *Copier
	// Budget paces requests under the policy's budgets; nil sends them
	// unpaced (a policy with budgets needs one).
	Budget Pacer
}

// Result is the outcome of one object with what it cost.
type Result struct {
	Outcome
	Heads, Updates int // S3 requests made (each SDK call, retries inside it not counted)

	budgets budgets
}

// budgets are the budgets an object is paced under, and whether it has
// been counted against its bucket's yet: an object is counted once,
// whatever requests it takes.
type budgets struct {
	objects, kms float64
	counted      bool
}

func (r *Rekeyer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Rekey handles one object. It makes at most two HEADs and one
// UpdateObjectEncryption, and none at all when the policy or the inventory
// facts settle the outcome.
//
// Inventory facts skip the HEAD where they prove the outcome: a delete
// marker is gone; NOT-SSE, SSE-C and DSSE-KMS are skipped; an Object Lock
// in force is skipped; SSE-S3 goes straight to UpdateObjectEncryption (its
// answer classifies any change since the inventory, re-reading the object
// when it refuses). SSE-KMS always needs a HEAD: inventories carry no key
// ARN. A stale inventory can therefore skip an object that was rewritten
// since; such a rewrite is an upload, which the event path enforces.
//
// An object named by an EventBridge event whose key may or may not have
// been form-encoded (AWS does not document which) carries its raw key as
// RawKey: when the decoded key is gone, the raw key is tried too.
func (r *Rekeyer) Rekey(ctx context.Context, obj messages.Object) Result {
	pol := r.Policy
	if r.Source != nil {
		p, err := r.Source.Current(ctx)
		if p == nil {
			return Result{Outcome: Outcome{Status: Retry, Reason: "policy", Detail: fmt.Sprint(err)}}
		}
		pol = p
	}
	res := r.rekeyOnce(ctx, pol, obj)
	if res.Status != Gone || obj.RawKey == "" || obj.RawKey == obj.Key {
		return res
	}
	alt := obj
	alt.Key, alt.RawKey = obj.RawKey, ""
	again := r.rekeyOnce(ctx, pol, alt)
	again.Heads += res.Heads
	again.Updates += res.Updates
	return again
}

func (r *Rekeyer) rekeyOnce(ctx context.Context, pol *policy.Policy, obj messages.Object) Result {
	m, err := pol.Resolve(ctx, obj.Bucket)
	if err != nil {
		// A tag selector could not read the bucket's tags: whether the
		// bucket is managed is unknown, so the object comes back later.
		return Result{Outcome: Outcome{Status: Retry, Reason: "policy", Detail: err.Error()}}
	}
	target, ok := m.Bucket, m.Managed
	dryRun := pol.DryRun
	switch {
	case !ok:
		return Result{Outcome: Outcome{Status: Skipped, Reason: ReasonUnmanagedBucket}}
	case policy.IsDirectoryBucket(obj.Bucket):
		return Result{Outcome: Outcome{Status: Skipped, Reason: ReasonDirectoryBucket}}
	case !target.InScope(obj.Key):
		return Result{Outcome: Outcome{Status: Skipped, Reason: ReasonExcludedPrefix}}
	}
	res := Result{budgets: budgets{objects: target.MaxObjectsPerSecond, kms: pol.MaxKMSRequestsPerSecond}}
	st, locked, known := stateFromFacts(obj.Facts)
	if known {
		d := Decide(st, target, dryRun, r.now())
		if locked && (d.Update || d.Copy || d.Outcome.Status == WouldUpdate || d.Outcome.Status == WouldCopy) {
			res.Outcome = Outcome{Status: Skipped, Reason: ReasonObjectLock, Detail: "Object Lock in force per inventory"}
			return res
		}
		if !d.Update && !d.Copy {
			res.Outcome = d.Outcome
			return res
		}
		// A copy keeps what the object is now: it needs the HEAD.
		known = !d.Copy
	}
	if !known || r.HeadBeforeUpdate {
		var out *Outcome
		st, out = r.head(ctx, obj, target, &res)
		if out != nil {
			res.Outcome = *out
			return res
		}
		if st.Encryption == encUnreadable {
			res.Outcome = r.updateUnreadable(ctx, obj, target, dryRun, &res)
			return res
		}
		d := Decide(st, target, dryRun, r.now())
		if d.Copy {
			res.Outcome = r.copyInPlace(ctx, obj, target, st, &res)
			return res
		}
		if !d.Update {
			res.Outcome = d.Outcome
			return res
		}
	}
	res.Outcome = r.update(ctx, obj, target, dryRun, &res, KMSRequests(st, target))
	return res
}

// KMSRequests is how many KMS requests S3 makes for an update or copy of
// an object in state st onto target: one to decrypt a source under SSE-KMS
// without a bucket key (or DSSE-KMS, which has none), one to encrypt under
// the target without one. With bucket keys S3 calls KMS once per bucket
// key's lifetime, not per object (userguide bucket-key.md).
func KMSRequests(st State, target policy.Bucket) int {
	n := 0
	if (st.Encryption == EncKMS && !st.BucketKey) || st.Encryption == EncDSSE {
		n++
	}
	if !target.BucketKeyEnabled {
		n++
	}
	return n
}

// pace waits for the budgets before a request for obj: the first request
// counts the object against its bucket's budget, and kms is the KMS
// requests S3 will make for this one. A budget that cannot be waited for
// (the invocation's deadline, the shared record unavailable) leaves the
// object to be tried again.
//
// An upload (ctx marked by budget.Ahead) goes first: its object is counted
// against the bucket's budget without waiting for it (the budget paces the
// backfill, which yields), and its KMS requests wait only behind other
// uploads' (the KMS budget keeps production's share of the account's
// quota, so uploads are held to it too).
func (r *Rekeyer) pace(ctx context.Context, bucket string, res *Result, kms int) *Outcome {
	b := &res.budgets
	if r.Budget == nil || (b.objects <= 0 && b.kms <= 0) {
		return nil // no budget: nothing to wait for, on every object's path
	}
	var err error
	switch taker, ok := r.Budget.(Taker); {
	case b.counted || b.objects <= 0:
	case budget.IsAhead(ctx) && ok:
		err = taker.Take(ctx, ScopeBucket(bucket), b.objects, 1)
	default:
		err = r.Budget.Wait(ctx, ScopeBucket(bucket), b.objects, 1)
	}
	b.counted = true
	if err == nil && kms > 0 && b.kms > 0 {
		err = r.Budget.Wait(ctx, ScopeKMS, b.kms, kms)
	}
	if err != nil {
		return &Outcome{Status: Retry, Reason: ReasonBudget, Detail: err.Error()}
	}
	return nil
}

// stateFromFacts turns inventory facts into a state when they are enough
// to decide without a HEAD; locked reports an Object Lock in force.
func stateFromFacts(f *messages.Facts) (st State, locked, known bool) {
	if f == nil {
		return State{}, false, false
	}
	if f.DeleteMarker {
		return State{DeleteMarker: true}, false, true
	}
	locked = f.Locked != nil && *f.Locked
	switch f.Encryption {
	case EncNone, EncC, EncDSSE, EncS3:
		return State{Encryption: f.Encryption}, locked, true
	}
	// SSE-KMS (or unknown): only a HEAD tells the key, and so compliance.
	return State{}, false, false
}

// head reads the object's state. A non-nil Outcome ends the task.
func (r *Rekeyer) head(ctx context.Context, obj messages.Object, target policy.Bucket, res *Result) (State, *Outcome) {
	if out := r.pace(ctx, obj.Bucket, res, 0); out != nil {
		return State{}, out
	}
	res.Heads++
	out, err := r.Head.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), VersionId: nonEmpty(obj.VersionID),
		ExpectedBucketOwner: aws.String(target.ExpectedOwner),
	})
	if err != nil {
		if httpStatus(err) == 400 {
			// A HEAD answer has no body, so a 400 names no reason: an SSE-C
			// object read without its key answers 400, and so do expired
			// credentials, a wrong region and a malformed version id. The
			// state stays unknown; UpdateObjectEncryption's own answer (or
			// a retry) tells which.
			return State{Encryption: encUnreadable}, nil
		}
		o := classify(err)
		return State{}, &o
	}
	return StateFromHead(out), nil
}

// encUnreadable marks an object whose HEAD answered a bare 400.
const encUnreadable = "unreadable"

// isSSECRefusal reports UpdateObjectEncryption's refusal of an SSE-C (or
// DSSE-KMS) source, the answer that proves what a HEAD's bare 400 cannot.
// S3 API reference, UpdateObjectEncryption, Errors: "doesn't support source
// objects with the encryption type DSSE-KMS or SSE-C".
func isSSECRefusal(code, msg string) bool {
	return code == "InvalidRequest" && strings.Contains(msg, "SSE-C")
}

// StateFromHead reads an object's state from a HeadObject answer.
func StateFromHead(h *s3.HeadObjectOutput) State {
	st := State{
		KMSKeyARN: aws.ToString(h.SSEKMSKeyId), BucketKey: aws.ToBool(h.BucketKeyEnabled),
		LockMode: string(h.ObjectLockMode), RetainUntil: aws.ToTime(h.ObjectLockRetainUntilDate),
		LegalHold: h.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn, DeleteMarker: aws.ToBool(h.DeleteMarker),
		StorageClass: string(h.StorageClass), ArchiveStatus: string(h.ArchiveStatus), head: h,
		EventHold: h.ObjectLockEventHold == types.ObjectLockEventHoldOn,
	}
	if h.ObjectLockEventHold == types.ObjectLockEventHoldOff && h.ObjectLockRetainUntilDate == nil &&
		(h.ObjectLockEventHoldDurationDays != nil || h.ObjectLockEventHoldDurationYears != nil) {
		// Released, its retention running from the release: without the
		// end date, the object is held as locked rather than risk it.
		st.EventHoldReleased = true
	}
	switch h.ServerSideEncryption {
	case types.ServerSideEncryptionAes256:
		st.Encryption = EncS3
	case types.ServerSideEncryptionAwsKms:
		st.Encryption = EncKMS
	case types.ServerSideEncryptionAwsKmsDsse:
		st.Encryption = EncDSSE
	default:
		st.Encryption = EncNone
		if aws.ToString(h.SSECustomerAlgorithm) != "" {
			st.Encryption = EncC
		}
	}
	return st
}

// update applies UpdateObjectEncryption and classifies its answer.
func (r *Rekeyer) update(ctx context.Context, obj messages.Object, target policy.Bucket, dryRun bool, res *Result, kms int) Outcome {
	if dryRun {
		return Outcome{Status: WouldUpdate}
	}
	if out := r.pace(ctx, obj.Bucket, res, kms); out != nil {
		return *out
	}
	res.Updates++
	err := r.sendUpdate(ctx, obj, target)
	if err == nil {
		return Outcome{Status: Updated}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		switch {
		case ae.ErrorCode() == "AccessDenied" && strings.Contains(msg, "Object Lock"):
			return Outcome{Status: Skipped, Reason: ReasonObjectLock, Detail: "refused by S3: " + msg}
		case ae.ErrorCode() == "InvalidRequest":
			// The object is not what we read (or what the inventory said):
			// read it again and let the decision table say what it is now.
			return r.reclassify(ctx, obj, target, res, msg)
		}
	}
	return classify(err)
}

// updateUnreadable tries the update of an object whose HEAD answered a bare
// 400, and lets S3's answer say what the object is: an SSE-C source is
// refused by name; any other 400 is about the request, never the object.
func (r *Rekeyer) updateUnreadable(ctx context.Context, obj messages.Object, target policy.Bucket, dryRun bool, res *Result) Outcome {
	const detail = "HeadObject answered 400 without a reason (an SSE-C object, or a request fault such as expired credentials)"
	if dryRun {
		return Outcome{Status: Failed, Reason: ReasonUnreadable, Detail: detail + "; a dry run sends no update to tell which"}
	}
	// The source is unknown: count only the target's KMS request (an SSE-C
	// source, the likely one, costs none).
	if out := r.pace(ctx, obj.Bucket, res, KMSRequests(State{}, target)); out != nil {
		return *out
	}
	res.Updates++
	err := r.sendUpdate(ctx, obj, target)
	if err == nil {
		return Outcome{Status: Updated}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch {
		case isSSECRefusal(ae.ErrorCode(), ae.ErrorMessage()):
			return Outcome{Status: Skipped, Reason: ReasonSSEC, Detail: "refused by S3: " + ae.ErrorMessage()}
		case ae.ErrorCode() == "AccessDenied" && strings.Contains(ae.ErrorMessage(), "Object Lock"):
			return Outcome{Status: Skipped, Reason: ReasonObjectLock, Detail: "refused by S3: " + ae.ErrorMessage()}
		case ae.ErrorCode() == "InvalidRequest":
			// Refused for what the object is (unencrypted, DSSE-KMS):
			// read it again, as any refused update is.
			return r.reclassify(ctx, obj, target, res, ae.ErrorMessage())
		}
	}
	return classify(err)
}

// sendUpdate makes one UpdateObjectEncryption request.
func (r *Rekeyer) sendUpdate(ctx context.Context, obj messages.Object, target policy.Bucket) error {
	_, err := r.Update.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{
		Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), VersionId: nonEmpty(obj.VersionID),
		ExpectedBucketOwner: aws.String(target.ExpectedOwner),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{
			KMSKeyArn: aws.String(target.KMSKeyARN), BucketKeyEnabled: aws.Bool(target.BucketKeyEnabled)}},
	})
	return err
}

// reclassify re-reads an object whose update was refused as invalid.
func (r *Rekeyer) reclassify(ctx context.Context, obj messages.Object, target policy.Bucket, res *Result, refusal string) Outcome {
	st, out := r.head(ctx, obj, target, res)
	if out != nil {
		return *out
	}
	if st.Encryption == encUnreadable {
		if isSSECRefusal("InvalidRequest", refusal) {
			return Outcome{Status: Skipped, Reason: ReasonSSEC, Detail: "refused by S3: " + refusal}
		}
		return Outcome{Status: Failed, Reason: ReasonInvalidRequest, Detail: "update refused (" + refusal + ") and HeadObject answered 400"}
	}
	d := Decide(st, target, false, r.now())
	if d.Copy {
		return r.copyInPlace(ctx, obj, target, st, res)
	}
	if d.Update {
		// The object looks updatable yet S3 refused: a real invalid request.
		return Outcome{Status: Failed, Reason: ReasonInvalidRequest, Detail: refusal}
	}
	return d.Outcome
}

// Throttled reports an outcome of a request over a service's rate (S3's
// 503 SlowDown, for KMS too when S3's calls to KMS are throttled, and the
// throttling codes of awsconf): the sender should slow down, and the object
// be tried again.
func Throttled(o Outcome) bool { return o.Status == Retry && awsconf.IsThrottleCode(o.Reason) }

// Waiting reports a retry whose cure is time: throttled, or held back by
// its budget. Such an object is tried again however often, soon.
func Waiting(o Outcome) bool { return Throttled(o) || (o.Status == Retry && o.Reason == ReasonBudget) }

// retryableCodes are error codes that go away by themselves.
// Throttling is retried too (see Throttled).
var retryableCodes = map[string]bool{
	"ServiceUnavailable": true, "InternalError": true, "RequestTimeout": true,
	"RequestTimeTooSkewed": true, "KMS.KMSInternalException": true,
	// 409: another request on the same object or bucket is in progress
	// (S3 API reference, Error responses: OperationAborted,
	// ConditionalRequestConflict); trying again later succeeds.
	"OperationAborted": true, "ConditionalRequestConflict": true,
	// Session credentials that expired mid-run are refreshed by the SDK's
	// provider on a later attempt; the object is untouched meanwhile.
	"ExpiredToken": true, "ExpiredTokenException": true, "TokenRefreshRequired": true, "RequestExpired": true,
}

// classify turns an S3 error into an outcome.
func classify(err error) Outcome {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Outcome{Status: Retry, Reason: "timeout", Detail: err.Error()}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case code == "NoSuchKey" || code == "NotFound" || code == "NoSuchVersion" || code == "MethodNotAllowed":
			return Outcome{Status: Gone}
		case code == "AccessDenied" || code == "Forbidden" || code == "AllAccessDisabled":
			return Outcome{Status: Failed, Reason: ReasonAccessDenied, Detail: ae.ErrorMessage()}
		case code == "NotImplemented":
			// Directory buckets are skipped by name before any request, so
			// this is S3 refusing the operation itself (for example a region
			// without UpdateObjectEncryption): a person must look.
			return Outcome{Status: Failed, Reason: ReasonNotImplemented, Detail: ae.ErrorMessage()}
		case awsconf.Throttled(err):
			reason, detail := code, ae.ErrorMessage()
			if !awsconf.IsThrottleCode(code) {
				// S3's 503 without a throttling code (a HEAD's answer has no
				// body to carry one) asks for a lower rate all the same.
				reason, detail = "SlowDown", strings.TrimSpace(code+": "+detail)
			}
			return Outcome{Status: Retry, Reason: reason, Detail: detail}
		case retryableCodes[code] || httpStatus(err) >= 500:
			return Outcome{Status: Retry, Reason: code, Detail: ae.ErrorMessage()}
		case code == "NoSuchBucket":
			return Outcome{Status: Failed, Reason: "no-such-bucket", Detail: ae.ErrorMessage()}
		}
		if s := httpStatus(err); s == 403 {
			return Outcome{Status: Failed, Reason: ReasonAccessDenied, Detail: code}
		} else if s == 404 {
			return Outcome{Status: Gone}
		}
		return Outcome{Status: Failed, Reason: ReasonInvalidRequest, Detail: code + ": " + ae.ErrorMessage()}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || httpStatus(err) >= 500 {
		return Outcome{Status: Retry, Reason: "network", Detail: err.Error()}
	}
	// No API answer at all (connection refused, reset, DNS): transient.
	return Outcome{Status: Retry, Reason: "transport", Detail: err.Error()}
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
