package awsconf

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxAttempts bounds the SDK's tries of one request; what still fails is
// classified and retried through the queue with backoff.
const MaxAttempts = 4

// Load reads the shared configuration. endpoint, when set, overrides every
// service's endpoint (AWS_ENDPOINT_URL does the same from the environment).
func Load(ctx context.Context, endpoint string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer),
		config.WithHTTPClient(NewHTTPClient()),
	}
	if endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// NewRetryer is the SDK's adaptive retryer (client-side rate limiting on
// throttling) with MaxAttempts tries.
func NewRetryer() aws.Retryer {
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
			so.MaxAttempts = MaxAttempts
			so.MaxBackoff = 5 * time.Second
		})
	})
}

// NewHTTPClient keeps enough idle connections per host for the handler's
// concurrency, so that a busy invocation does not open a connection per
// request.
func NewHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 1024
		t.IdleConnTimeout = 60 * time.Second
	})
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
