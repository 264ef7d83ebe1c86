package emulator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"
	"github.com/s3rekey/s3rekey/internal/emulator/organizations"
	"github.com/s3rekey/s3rekey/internal/emulator/sts"
)

// OrgOptions configures an organization of accounts behind one endpoint.
type OrgOptions struct {
	// Addr is the listen address, a loopback address (DefaultAddr when
	// empty).
	Addr string
	// Region is the one region served (DefaultRegion when empty).
	Region string
	// Management is the organization's management account (DefaultAccount
	// when empty). Its root also answers to AccessKeyID.
	Management string
	// Members are further accounts of the organization, in its root.
	Members []string
	// Outside are accounts that exist but belong to no organization.
	Outside []string
	// Account is the template of every account's emulator options
	// (faults, quotas, rules); its Addr, Account, Region and Policies are
	// ignored.
	Account Options
	// Logger receives one debug line per request; nil discards them.
	Logger *slog.Logger
	// Clock is STS's clock, which session expirations are read against;
	// nil is time.Now.
	Clock func() time.Time
}

// Organization is several accounts, each its own Emulator with its own
// buckets, queues, keys and identity policies, behind one endpoint, with
// STS and AWS Organizations. A request goes to the account of the key that
// signed it, except that S3 requests go to the account that owns the
// bucket (bucket names are global) and KMS requests naming a key ARN go to
// the key's account: there the caller's identity policy and the bucket or
// key policy are evaluated together. It is safe for concurrent use.
type Organization struct {
	opts OrgOptions
	org  *organizations.Organization
	sts  *sts.Service

	mu       sync.RWMutex
	accounts map[string]*Emulator
	keys     map[string]principal // long-term access keys
	users    int

	// createMu makes CreateBucket atomic across accounts.
	createMu sync.Mutex

	url      string
	server   *http.Server
	closeErr error
	once     sync.Once
}

// principal is the holder of a long-term access key: an account's root or
// an IAM user.
type principal struct {
	account, arn, userID string
}

// NewOrganization builds an organization without listening: call Listen,
// or serve it as an http.Handler and call SetURL.
func NewOrganization(opts OrgOptions) (*Organization, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Management == "" {
		opts.Management = DefaultAccount
	}
	if err := checkLoopback(opts.Addr); err != nil {
		return nil, err
	}
	o := &Organization{opts: opts, org: organizations.New(opts.Management), sts: sts.New(),
		accounts: map[string]*Emulator{}, keys: map[string]principal{}}
	o.sts.Caller, o.sts.Now = o.callerOf, opts.Clock
	if err := o.addEmulator(opts.Management); err != nil {
		return nil, err
	}
	o.keys[AccessKeyID] = o.keys[RootAccessKey(opts.Management)]
	for _, id := range opts.Members {
		if err := o.AddAccount(id, ""); err != nil {
			return nil, err
		}
	}
	for _, id := range opts.Outside {
		if err := o.addEmulator(id); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// StartOrganization builds an organization and serves it until ctx is
// done or Close is called.
func StartOrganization(ctx context.Context, opts OrgOptions) (*Organization, error) {
	o, err := NewOrganization(opts)
	if err != nil {
		return nil, err
	}
	if err := o.Listen(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

// Listen serves the organization on its address.
func (o *Organization) Listen(ctx context.Context) error {
	ln, err := net.Listen("tcp", o.opts.Addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", o.opts.Addr, err)
	}
	o.SetURL("http://" + ln.Addr().String())
	o.server = serve(ctx, ln, o, o.Close)
	return nil
}

// SetURL sets the endpoint every account reports (queue URLs).
func (o *Organization) SetURL(u string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.url = u
	for _, e := range o.accounts {
		e.SetURL(u)
	}
}

// URL is the endpoint to give the SDK clients.
func (o *Organization) URL() string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.url
}

// Close stops serving and closes every account.
func (o *Organization) Close() error {
	o.once.Do(func() {
		o.mu.RLock()
		for _, e := range o.accounts {
			_ = e.Close()
		}
		o.mu.RUnlock()
		if o.server != nil {
			o.closeErr = shutdown(o.server)
		}
	})
	return o.closeErr
}

// ID is the organization's id (aws:PrincipalOrgID).
func (o *Organization) ID() string { return o.org.ID() }

// RootID is the id of the organization's root, the parent of OUs.
func (o *Organization) RootID() string { return o.org.RootID() }

// Management is the management account.
func (o *Organization) Management() string { return o.opts.Management }

// Region is the region served.
func (o *Organization) Region() string { return o.opts.Region }

// RootAccessKey is the access key of an account's root user (its secret
// is SecretAccessKey): no identity policy limits it in its own account.
func RootAccessKey(account string) string { return "AKIA" + account + "ROOT" }

// addEmulator makes an account's emulator, outside the organization.
func (o *Organization) addEmulator(account string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.accounts[account]; ok {
		return nil
	}
	opts := o.opts.Account
	opts.Addr, opts.Account, opts.Region, opts.Policies = o.opts.Addr, account, o.opts.Region, nil
	if opts.Logger == nil {
		opts.Logger = o.opts.Logger
	}
	e, err := New(opts)
	if err != nil {
		return err
	}
	e.kms.PrincipalPolicies = true
	e.foreignKMS, e.s3.ForeignKMS, e.s3.Organization = o.kmsOf, o.kmsOf, o.organizationOf
	if o.url != "" {
		e.SetURL(o.url)
	}
	o.accounts[account] = e
	o.keys[RootAccessKey(account)] = principal{account: account, arn: iam.RootARN(account), userID: account}
	return nil
}

// AddAccount adds an account while running, or moves one, into the
// organization under parent (an OU id from CreateUnit; the root when
// empty). An account outside the organization joins it.
func (o *Organization) AddAccount(account, parent string) error {
	if err := o.addEmulator(account); err != nil {
		return err
	}
	return o.org.AddAccount(account, "", parent)
}

// ApproveOrganizationKeys stands for AWS Support's approval for account
// to use KMS keys of other accounts of its organization in
// UpdateObjectEncryption.
func (o *Organization) ApproveOrganizationKeys(account string) error {
	e := o.Account(account)
	if e == nil {
		return fmt.Errorf("emulator: unknown account %s", account)
	}
	e.s3.OrganizationKeys.Store(true)
	return nil
}

// kmsOf is an account's KMS, nil for an unknown account.
func (o *Organization) kmsOf(account string) *kms.Service {
	if e := o.Account(account); e != nil {
		return e.kms
	}
	return nil
}

// organizationOf is the organization of an account ("" outside it) and
// the account's ARN in it.
func (o *Organization) organizationOf(account string) (orgID, accountARN string) {
	if !o.org.Contains(account) {
		return "", ""
	}
	return o.org.ID(), o.org.AccountARN(account)
}

// AddOutsideAccount adds an account that belongs to no organization.
func (o *Organization) AddOutsideAccount(account string) error { return o.addEmulator(account) }

// CreateUnit adds an organizational unit under parent (RootID or an OU)
// and returns its id.
func (o *Organization) CreateUnit(parent, name string) (string, error) {
	return o.org.CreateUnit(parent, name)
}

// Account is an account's emulator, nil for an unknown account.
func (o *Organization) Account(account string) *Emulator {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.accounts[account]
}

// Accounts are every account, in the organization or not, sorted.
func (o *Organization) Accounts() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]string, 0, len(o.accounts))
	for id := range o.accounts {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// InOrganization reports whether an account is a member.
func (o *Organization) InOrganization(account string) bool { return o.org.Contains(account) }

// PutRole creates or replaces a role of account with a trust policy (who
// may assume it) and an identity policy (what its sessions may do; nil
// allows everything), and returns its ARN.
func (o *Organization) PutRole(account, name string, trust, policy []byte) (string, error) {
	if o.Account(account) == nil {
		return "", fmt.Errorf("emulator: unknown account %s", account)
	}
	role, err := o.sts.PutRole(account, name, trust, policy)
	if err != nil {
		return "", err
	}
	return role.ARN, nil
}

// AddUser gives account an IAM user with an access key whose requests its
// identity policy governs (nil allows everything), and returns the key.
func (o *Organization) AddUser(account, name string, policy []byte) (string, error) {
	e := o.Account(account)
	if e == nil {
		return "", fmt.Errorf("emulator: unknown account %s", account)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users++
	key := fmt.Sprintf("AKIA%sU%03d", account, o.users%1000)
	if err := e.BindPolicy(key, policy); err != nil {
		return "", err
	}
	o.keys[key] = principal{account: account, arn: "arn:aws:iam::" + account + ":user/" + name, userID: "AIDA" + key[4:]}
	return key, nil
}

// AWSConfig is an SDK configuration signing as an access key of the
// organization (RootAccessKey, AddUser's), or as a session's temporary
// credentials when token is set.
func (o *Organization) AWSConfig(accessKey, secret, token string) aws.Config {
	if secret == "" {
		secret = SecretAccessKey
	}
	return aws.Config{
		Region:       o.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, token),
		BaseEndpoint: aws.String(o.URL()),
	}
}

// callerOf is who signed a request: a long-term key's holder or an
// AssumeRole session, with the identity policy that governs it and the
// organization of its account.
func (o *Organization) callerOf(r *http.Request) (iam.Caller, bool) {
	scope, ok := core.ParseSigV4(r)
	if !ok {
		return iam.Caller{}, false
	}
	var c iam.Caller
	if sess, ok := o.sts.Session(scope.AccessKey); ok {
		role := sess.Role
		if now, ok := o.sts.Role(role.ARN); ok {
			role = now // a changed role policy applies to its live sessions
		}
		c = iam.Caller{Account: role.Account, ARN: sess.ARN, RoleARN: role.ARN, UserID: sess.UserID, Policy: role.Policy}
	} else {
		o.mu.RLock()
		p, known := o.keys[scope.AccessKey]
		home := o.accounts[p.account]
		o.mu.RUnlock()
		if !known {
			return iam.Caller{}, false
		}
		c = iam.Caller{Account: p.account, ARN: p.arn, UserID: p.userID, Policy: home.iam.Policy(scope.AccessKey)}
	}
	if o.org.Contains(c.Account) {
		c.OrgID = o.org.ID()
	}
	return c, true
}
