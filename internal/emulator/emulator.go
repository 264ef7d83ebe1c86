package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/dynamodb"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
	"github.com/s3rekey/s3rekey/internal/emulator/s3tables"
	"github.com/s3rekey/s3rekey/internal/emulator/sqs"
	"github.com/s3rekey/s3rekey/internal/emulator/ssm"
)

// Defaults used when Options leaves a field empty.
const (
	DefaultAccount = "111122223333"
	DefaultRegion  = "us-east-1"
	DefaultAddr    = "127.0.0.1:0"
)

// Options configures an emulator.
type Options struct {
	// Addr is the listen address; it must be a loopback address. Port 0 picks
	// a free port.
	Addr string
	// Account is the AWS account that owns every bucket, queue and key.
	Account string
	// Region is the one region served.
	Region string
	// EventBridgeRules stand in for EventBridge rules with an SQS target: an
	// "Object Created" event of a bucket with EventBridge delivery enabled is
	// sent to the queue of every matching rule.
	EventBridgeRules []EventBridgeRule
	// EventBridgeRawKeys sends EventBridge "Object Created" keys raw rather
	// than form-encoded: AWS documents the encoding of classic
	// notification keys only, so both readings are served.
	EventBridgeRawKeys bool
	// NotS3UpdateEncryption answers UpdateObjectEncryption as several
	// S3-compatible servers do: by overwriting the object with the request's
	// XML body, answering as PutObject does (with an ETag).
	NotS3UpdateEncryption bool
	// FaultSeed seeds the random source of injected faults, so a test run can
	// be repeated. Zero means a fixed default seed.
	FaultSeed uint64
	// Policies bind IAM identity policies (JSON documents) to access keys:
	// requests signed with such a key are allowed only what its policy
	// allows. Keys with no policy, AccessKeyID among them, may do
	// everything.
	Policies map[string][]byte
	// Quotas are request rates to enforce (none by default).
	Quotas Quotas
	// OrganizationKeys stands for AWS Support's approval for the account to
	// use KMS keys of other accounts of its organization in
	// UpdateObjectEncryption (alone, the emulator is in no organization).
	OrganizationKeys bool
	// MetadataLag is how long after a change S3 Metadata live inventory
	// tables show it (S3: typically within an hour; default 0).
	MetadataLag time.Duration
	// Logger receives one debug line per request; nil discards them.
	Logger *slog.Logger
}

// Emulator is a running local AWS endpoint. It is safe for concurrent use.
type Emulator struct {
	opts     Options
	listener net.Listener
	server   *http.Server
	url      string

	kms      *kms.Service
	dynamodb *dynamodb.Service
	sqs      *sqs.Service
	ssm      *ssm.Service
	s3       *s3.Service
	tables   *s3tables.Service
	faults   *core.Faults
	counter  *core.Counter
	iam      *iam.Store
	quotas   quotaState

	// foreignKMS is the KMS of another account of the organization the
	// emulator is part of; nil alone.
	foreignKMS func(account string) *kms.Service

	rulesMu sync.RWMutex
	rules   []EventBridgeRule

	closeOnce sync.Once
	closeErr  error
}

// Start builds an emulator and serves it on opts.Addr until ctx is done or
// Close is called.
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := e.Listen(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Listen serves the emulator on its address until ctx is done or Close is
// called.
func (e *Emulator) Listen(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.opts.Addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", e.opts.Addr, err)
	}
	e.listener = ln
	e.url = "http://" + ln.Addr().String()
	e.server = serve(ctx, ln, e, e.Close)
	return nil
}

// serve answers h on ln until ctx is done, then calls closer.
func serve(ctx context.Context, ln net.Listener, h http.Handler, closer func() error) *http.Server {
	server := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = closer()
	}()
	return server
}

// shutdown stops a server, waiting up to 2 seconds for requests in
// flight (long polls end early).
func shutdown(server *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = server.Close()
	}
	return err
}

// EnvLines are the environment settings that point the AWS CLI and SDKs at
// the emulator.
func (e *Emulator) EnvLines() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + e.url,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + e.opts.Region,
	}
}

// New builds an emulator without listening: call Listen, or serve it as an
// http.Handler (for example behind httptest.Server) and call SetURL.
func New(opts Options) (*Emulator, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if !iam.IsAccountID(opts.Account) {
		return nil, fmt.Errorf("emulator: account %q is not a 12-digit AWS account id", opts.Account)
	}
	if err := checkLoopback(opts.Addr); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{
		opts:    opts,
		faults:  core.NewFaults(opts.FaultSeed),
		counter: core.NewCounter(),
		iam:     iam.NewStore(),
		rules:   append([]EventBridgeRule(nil), opts.EventBridgeRules...),
	}
	e.kms = kms.New(opts.Account, opts.Region)
	e.dynamodb = dynamodb.New(opts.Account, opts.Region)
	e.dynamodb.Authorize = func(r *http.Request, action, resource string) bool {
		return e.allowed(r, iam.Request{Action: action, Resource: resource})
	}
	e.dynamodb.Consume = e.counter.AddCapacity
	e.sqs = sqs.New(opts.Account, opts.Region, e.queueURL)
	e.sqs.Draw = e.faults.Draw
	e.ssm = ssm.New(opts.Account, opts.Region)
	e.s3 = s3.New(opts.Account, opts.Region, e.kms, e.sqs, e.eventBridgeRules, e.counter)
	e.s3.Authorize = e.authorizeS3
	e.s3.EventBridgeRawKeys = opts.EventBridgeRawKeys
	e.s3.OverwriteOnUpdateEncryption.Store(opts.NotS3UpdateEncryption)
	e.s3.OrganizationKeys.Store(opts.OrganizationKeys)
	e.s3.KMSQuota = e.kmsAllowed
	e.newTables()
	e.SetQuotas(opts.Quotas)
	for key, doc := range opts.Policies {
		if err := e.BindPolicy(key, doc); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// checkLoopback refuses any listen address that is not on this machine's
// loopback interface: the emulator holds no real secrets, but it accepts any
// credentials and must never be reachable from elsewhere.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("emulator: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("emulator: listen address %q is not a loopback address (use 127.0.0.1)", addr)
	}
	return nil
}

// URL is the endpoint to give the SDK clients (BaseEndpoint).
func (e *Emulator) URL() string { return e.url }

// SetURL sets the endpoint the emulator reports in queue URLs, for an
// emulator served by another http.Server.
func (e *Emulator) SetURL(u string) { e.url = strings.TrimRight(u, "/") }

// Account is the account that owns every resource.
func (e *Emulator) Account() string { return e.opts.Account }

// Region is the region served.
func (e *Emulator) Region() string { return e.opts.Region }

// Close stops serving. Pending long polls return early.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		e.sqs.Close()
		if e.server != nil {
			e.closeErr = shutdown(e.server)
		}
	})
	return e.closeErr
}

// AddEventBridgeRule adds a rule at run time.
func (e *Emulator) AddEventBridgeRule(r EventBridgeRule) {
	e.rulesMu.Lock()
	defer e.rulesMu.Unlock()
	e.rules = append(e.rules, r)
}

func (e *Emulator) eventBridgeRules() []EventBridgeRule {
	e.rulesMu.RLock()
	defer e.rulesMu.RUnlock()
	return append([]EventBridgeRule(nil), e.rules...)
}

func (e *Emulator) queueURL(name string) string {
	return e.url + "/" + e.opts.Account + "/" + name
}

// ServeHTTP routes a request to the admin endpoint, SQS, KMS, DynamoDB, SSM
// or S3.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		e.serveAdmin(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, sqsTargetPrefix):
		e.serveJSON(w, r, "sqs", strings.TrimPrefix(target, sqsTargetPrefix), e.sqs.Dispatch, e.sqs.Permission, sqs.ErrorCodes)
	case strings.HasPrefix(target, dynamodb.TargetPrefix):
		e.serveJSON(w, r, "dynamodb", strings.TrimPrefix(target, dynamodb.TargetPrefix), e.dynamodb.Dispatch, e.dynamodb.Permission, dynamodb.ErrorCodes)
	case strings.HasPrefix(target, kmsTargetPrefix):
		e.serveJSON(w, r, "kms", strings.TrimPrefix(target, kmsTargetPrefix), e.kms.Dispatch, e.kms.Permission, kms.ErrorCodes)
	case strings.HasPrefix(target, ssm.TargetPrefix):
		scope, _ := core.ParseSigV4(r)
		params := e.ssm.In(scope.Region)
		e.serveJSON(w, r, "ssm", strings.TrimPrefix(target, ssm.TargetPrefix), params.Dispatch, params.Permission, ssm.ErrorCodes)
	case target == "" && isSQSQuery(r):
		e.serveSQSQuery(w, r)
	case target != "":
		core.WriteJSONError(w, http.StatusBadRequest, "UnknownOperationException", "unknown target "+target, nil)
	case e.serveTables(w, r):
	default:
		e.serveS3(w, r)
	}
}

// before applies the per-operation latency and fault injection and counts
// the request. It reports the injected fault, if any.
func (e *Emulator) before(ctx context.Context, service, op, bucket string) (*core.Error, error) {
	e.counter.Add(service, op, bucket)
	if d := e.faults.Latency(service, op); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return e.faults.Inject(service, op), nil
}

const (
	sqsTargetPrefix = "AmazonSQS."
	kmsTargetPrefix = "TrentService."
)

// responder writes one service's answers in one protocol.
type responder struct {
	ok  func(out any)
	err func(status int, code, msg string)
	// fail writes an operation's error; nil uses err.
	fail func(e *core.Error)
}

// jsonResponder answers in AWS JSON 1.0/1.1.
func jsonResponder(w http.ResponseWriter, r *http.Request, queryCodes core.QueryErrorCodes) responder {
	return responder{
		ok: func(out any) {
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.Header().Set("X-Amzn-Requestid", core.NewID(16))
			if out == nil {
				out = struct{}{}
			}
			core.WriteJSON(w, out)
		},
		err:  func(status int, code, msg string) { core.WriteJSONError(w, status, code, msg, queryCodes) },
		fail: func(e *core.Error) { core.WriteJSONErrorFields(w, e, queryCodes) },
	}
}

// serveJSON serves an AWS JSON 1.0/1.1 request.
func (e *Emulator) serveJSON(w http.ResponseWriter, r *http.Request, service, op string, dispatch core.JSONHandler,
	permission func(op string, body []byte) (action, resource string, context map[string][]string), queryCodes core.QueryErrorCodes) {
	resp := jsonResponder(w, r, queryCodes)
	if r.Method != http.MethodPost {
		resp.err(http.StatusMethodNotAllowed, "InvalidAction", "JSON protocol requests use POST")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, core.MaxJSONBody+1))
	if err != nil {
		resp.err(http.StatusBadRequest, "InvalidRequest", "reading body: "+err.Error())
		return
	}
	if len(body) > core.MaxJSONBody {
		resp.err(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request body too large")
		return
	}
	e.serveOperation(r, service, op, body, dispatch, permission, resp)
}

// serveSQSQuery serves SQS's query protocol: the form becomes the JSON
// operation's input, its output the query protocol's XML.
func (e *Emulator) serveSQSQuery(w http.ResponseWriter, r *http.Request) {
	requestID := core.NewID(16)
	var op string
	resp := responder{
		ok: func(out any) {
			doc, err := sqs.QueryOutput(op, out, requestID)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write(doc)
		},
		err: func(status int, code, msg string) {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			_, _ = w.Write(sqs.QueryError(code, msg, requestID))
		},
	}
	r.Body = http.MaxBytesReader(nil, r.Body, core.MaxJSONBody)
	if err := r.ParseForm(); err != nil {
		resp.err(http.StatusBadRequest, "MalformedQueryString", "cannot read the form: "+err.Error())
		return
	}
	var body []byte
	var err error
	if op, body, err = sqs.QueryInput(r.Form); err != nil || op == "" {
		resp.err(http.StatusBadRequest, "MissingAction", "The request must contain the parameter Action.")
		return
	}
	e.serveOperation(r, "sqs", op, body, e.sqs.Dispatch, e.sqs.Permission, resp)
}

// serveOperation runs one JSON-shaped operation: SigV4 and session,
// faults and counting, IAM, dispatch.
func (e *Emulator) serveOperation(r *http.Request, service, op string, body []byte, dispatch core.JSONHandler,
	permission func(op string, body []byte) (action, resource string, context map[string][]string), resp responder) {
	scope, ok := core.ParseSigV4(r)
	if !ok {
		resp.err(http.StatusBadRequest, "MissingAuthenticationTokenException", "Request is missing Authentication Token")
		return
	}
	if e.iam.Expired(scope.AccessKey, service) {
		resp.err(http.StatusBadRequest, "ExpiredTokenException", "The security token included in the request is expired")
		return
	}
	fault, err := e.before(r.Context(), service, op, "")
	if err != nil {
		return // client went away during injected latency
	}
	if fault != nil {
		resp.err(fault.Status, fault.Code, fault.Message)
		return
	}
	// An action of "" is checked inside the operation (DynamoDB's
	// TransactWriteItems, item by item).
	if action, resource, context := permission(op, body); action != "" && !e.allowed(r, iam.Request{Action: action, Resource: resource, Context: context}) {
		resp.err(http.StatusBadRequest, "AccessDeniedException", notAuthorized(scope.AccessKey, action, resource))
		return
	}
	if service == "kms" && kmsCryptoOps[op] && !e.kmsAllowed(1) {
		resp.err(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	out, apiErr := dispatch(r, op, body)
	switch {
	case apiErr != nil && resp.fail != nil:
		resp.fail(apiErr)
		return
	case apiErr != nil:
		resp.err(apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	resp.ok(out)
}

// isSQSQuery recognizes SQS's query protocol: no X-Amz-Target, signed for
// the sqs service (S3 requests are signed for s3).
func isSQSQuery(r *http.Request) bool {
	scope, ok := core.ParseSigV4(r)
	return ok && scope.Service == "sqs"
}

const adminPrefix = "/_emulator/"

// serveAdmin answers the admin endpoint:
//
//	GET  /_emulator/health   200 "ok"
//	GET  /_emulator/counts   request counts as JSON
//	POST /_emulator/counts/reset
//	POST /_emulator/inventory?source=B&destination=D&format=CSV[&prefix=P][&current=true]
//	     publishes an S3 Inventory report now; answers {"manifest":"s3://D/…/manifest.json"}
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == adminPrefix+"health":
		_, _ = w.Write([]byte("ok\n"))
	case r.Method == http.MethodGet && r.URL.Path == adminPrefix+"counts":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Counts())
	case r.Method == http.MethodPost && r.URL.Path == adminPrefix+"counts/reset":
		e.ResetCounts()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == adminPrefix+"inventory":
		q := r.URL.Query()
		opts := InventoryOptions{SourceBucket: q.Get("source"), DestinationBucket: q.Get("destination"), Prefix: q.Get("prefix"),
			Format: q.Get("format"), CurrentOnly: q.Get("current") == "true"}
		key, err := e.PublishInventory(opts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"manifest": "s3://" + opts.DestinationBucket + "/" + key})
	default:
		http.Error(w, "unknown admin request", http.StatusNotFound)
	}
}
