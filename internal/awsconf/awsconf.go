package awsconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// MaxAttempts bounds the SDK's tries of one request; what still fails is
// classified and retried through the queue with backoff.
const MaxAttempts = 4

// Load reads the shared configuration. endpoint, when set, overrides every
// service's endpoint (AWS_ENDPOINT_URL does the same from the environment).
func Load(ctx context.Context, endpoint string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer),
		config.WithHTTPClient(newPooledClient()),
	}
	if endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	// Wrapped only now: loading applies a CA bundle (AWS_CA_BUNDLE) to the
	// SDK's own client type, and refuses any other.
	cfg.HTTPClient = inMemoryBodies{next: cfg.HTTPClient}
	return cfg, nil
}

// NewRetryer is the SDK's standard retryer with MaxAttempts tries. Not
// its adaptive mode: that one also limits each client's own rate after
// throttling, and under the encrypt function's window of objects in
// flight, which already adapts to throttling (AIMD), the two together held
// a backfill to 0.43 of the quota it could reach (BenchmarkQuotaFound).
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = MaxAttempts
		so.MaxBackoff = 5 * time.Second
	})
}

// NewHTTPClient keeps enough idle connections per host for the handler's
// concurrency, so that a busy invocation does not open a connection per
// request, and hands the transport every request body from memory (see
// inMemoryBodies).
func NewHTTPClient() aws.HTTPClient {
	return inMemoryBodies{next: newPooledClient()}
}

func newPooledClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 1024
		t.IdleConnTimeout = 60 * time.Second
	})
}

// maxInMemoryBody bounds the request bodies copied into memory: SQS's
// largest request (a 256 KiB batch) and every S3, SQS and KMS control
// request fit; larger or unknown-length bodies pass through unchanged.
const maxInMemoryBody = 1 << 20

// inMemoryBodies gives the transport each request body as a bytes.Reader.
//
// The SDK closes its request body as soon as Do returns. For a body it
// does not know to be in memory, net/http writes the bytes straight to the
// socket and only then reads the body once more to check that it ended;
// when the response arrives in between (a fast server, a busy CPU) and the
// SDK has closed the body, that last read fails and the transport closes
// the connection under the response being read: "use of closed network
// connection" after a 200. The request has taken effect by then, so the
// SDK's retry repeats it (a second SendMessageBatch) or loses its result
// (a ReceiveMessage's messages stay invisible). A body the transport
// knows to be in memory is written whole before any response can arrive.
type inMemoryBodies struct{ next aws.HTTPClient }

func (c inMemoryBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength <= 0 || req.ContentLength > maxInMemoryBody {
		return c.next.Do(req)
	}
	// One byte more than declared lets the transport report a body longer
	// than its Content-Length, as it would have.
	body, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s %s request body: %w", req.Method, req.URL.Path, err)
	}
	out := req.WithContext(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return c.next.Do(out)
}

// S3Options returns the S3 client options for cfg: path-style addressing
// when an endpoint override is set, as local endpoints serve no
// virtual-hosted bucket names.
func S3Options(cfg aws.Config) func(*s3.Options) {
	return func(o *s3.Options) {
		if cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	}
}

// ThrottlesToCaller makes an S3 client answer throttling at once instead of
// retrying it inside the SDK: the encrypt function's window of objects in
// flight halves on each throttle it sees (AIMD) and retries the object
// itself, and retries hidden in the SDK, each holding a place in the window
// through seconds of backoff, would keep the window from seeing the quota.
// Other retryable errors are still retried in the SDK.
func ThrottlesToCaller(o *s3.Options) {
	if o.Retryer == nil {
		o.Retryer = NewRetryer()
	}
	next, ok := o.Retryer.(aws.RetryerV2)
	if !ok {
		next = &retryerV2{o.Retryer}
	}
	o.Retryer = noThrottleRetries{next}
}

// noThrottleRetries is a retryer that does not retry throttling.
type noThrottleRetries struct{ aws.RetryerV2 }

func (r noThrottleRetries) IsErrorRetryable(err error) bool {
	return !Throttled(err) && r.RetryerV2.IsErrorRetryable(err)
}

// throttleCodes are the error codes of a request over a service's rate: the
// SDK's own list, and KMS's throttling as S3 relays it.
var throttleCodes = func() map[string]bool {
	codes := map[string]bool{"KMS.ThrottlingException": true}
	for code := range retry.DefaultThrottleErrorCodes {
		codes[code] = true
	}
	return codes
}()

// IsThrottleCode reports an error code that asks for a lower request rate.
func IsThrottleCode(code string) bool { return throttleCodes[code] }

// Throttled reports an answer over a service's request rate: a throttling
// code, or a 503, S3's "Slow Down", whose code a HEAD answer (no body)
// cannot carry (userguide ErrorBestPractices.md).
func Throttled(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && IsThrottleCode(ae.ErrorCode()) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusServiceUnavailable
}

// retryerV2 lifts an aws.Retryer to aws.RetryerV2, as the SDK does.
type retryerV2 struct{ aws.Retryer }

func (r *retryerV2) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.GetInitialToken(), nil
}
