package awsconf

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestLoad(t *testing.T) {
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	tlsServer.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, caBundle := range map[string]string{"no CA bundle": "", "custom CA bundle": bundle} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv("AWS_CA_BUNDLE", caBundle)
			cfg, err := Load(context.Background(), "http://127.0.0.1:4566")
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:4566" || cfg.Region != "us-east-1" {
				t.Errorf("config endpoint %v region %s", cfg.BaseEndpoint, cfg.Region)
			}
			if got := cfg.Retryer().MaxAttempts(); got != MaxAttempts {
				t.Errorf("retryer allows %d attempts, want %d", got, MaxAttempts)
			}
			if _, ok := cfg.HTTPClient.(inMemoryBodies); !ok {
				t.Errorf("HTTP client %T does not hand request bodies from memory", cfg.HTTPClient)
			}
			var o s3.Options
			S3Options(cfg)(&o)
			if !o.UsePathStyle {
				t.Error("an endpoint override must select path-style S3")
			}
			cfg.BaseEndpoint = nil
			o = s3.Options{}
			S3Options(cfg)(&o)
			if o.UsePathStyle {
				t.Error("real AWS must keep virtual-hosted S3")
			}
		})
	}
}

// lateCheckBody behaves like the SDK's request body, which answers a read
// after Close with io.EOF, and holds the transport's end-of-body check
// (WriteTo) until the caller has closed it, as a busy CPU may.
type lateCheckBody struct {
	data   *strings.Reader
	closed chan struct{}
	once   sync.Once
}

func (b *lateCheckBody) Read(p []byte) (int, error) { return b.data.Read(p) }

func (b *lateCheckBody) WriteTo(w io.Writer) (int64, error) {
	<-b.closed
	return 0, io.EOF
}

func (b *lateCheckBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func TestRequestBodyClosedAfterResponseKeepsTheConnection(t *testing.T) {
	response := strings.Repeat("r", 256<<10) // larger than the transport's read buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		io.WriteString(w, response)
	}))
	defer srv.Close()
	client := NewHTTPClient()
	for i := range 3 {
		const payload = `{"QueueUrl":"q","MaxNumberOfMessages":10}`
		body := &lateCheckBody{data: strings.NewReader(payload), closed: make(chan struct{})}
		req, err := http.NewRequest(http.MethodPost, srv.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(payload))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body.Close() // what the SDK does as soon as Do returns
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(got) != len(response) {
			t.Fatalf("request %d: read %d of %d response bytes: %v", i, len(got), len(response), err)
		}
	}
}

// doFunc is an HTTP client made of one function.
type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestOnlyBoundedKnownLengthBodiesAreCopied(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64 // Content-Length; -1 unknown
		copied bool
	}{
		{"small known length", 1000, true},
		{"at the bound", maxInMemoryBody, true},
		{"over the bound", maxInMemoryBody + 1, false},
		{"unknown length", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := strings.Repeat("b", 4096)
			if tc.size > 0 {
				payload = strings.Repeat("b", int(tc.size))
			}
			original := io.NopCloser(strings.NewReader(payload))
			req, err := http.NewRequest(http.MethodPut, "http://127.0.0.1:1/bucket/key", original)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.size
			var sent *http.Request
			client := inMemoryBodies{next: doFunc(func(r *http.Request) (*http.Response, error) {
				sent = r
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
			})}
			if _, err := client.Do(req); err != nil {
				t.Fatal(err)
			}
			if copied := sent.Body != original; copied != tc.copied {
				t.Fatalf("body copied = %v, want %v", copied, tc.copied)
			}
			got, err := io.ReadAll(sent.Body)
			if err != nil || string(got) != payload {
				t.Errorf("transport would send %d bytes (%v), want the %d sent", len(got), err, len(payload))
			}
			if tc.copied {
				again, err := sent.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(again); string(b) != payload {
					t.Error("GetBody does not replay the body")
				}
			}
		})
	}
}

// TestThrottlesReachTheCaller: an S3 client with ThrottlesToCaller answers
// a 503 SlowDown after one request, so that the caller's window sees it,
// and still retries a 500 InternalError up to MaxAttempts.
func TestThrottlesReachTheCaller(t *testing.T) {
	for _, tc := range []struct {
		code     string
		status   int
		requests int
	}{
		{"SlowDown", http.StatusServiceUnavailable, 1},
		{"InternalError", http.StatusInternalServerError, MaxAttempts},
	} {
		t.Run(tc.code, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				mu.Unlock()
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "<Error><Code>"+tc.code+"</Code><Message>m</Message></Error>")
			}))
			defer srv.Close()
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			cfg, err := Load(context.Background(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			// No backoff between the InternalError tries: the count matters.
			client := s3.NewFromConfig(cfg, S3Options(cfg), ThrottlesToCaller, func(o *s3.Options) {
				o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond)
			})
			_, err = client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
			if err == nil {
				t.Fatal("no error")
			}
			if requests != tc.requests {
				t.Errorf("%s: %d requests, want %d", tc.code, requests, tc.requests)
			}
		})
	}
}
