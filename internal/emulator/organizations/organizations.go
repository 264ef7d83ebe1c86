// Package organizations models AWS Organizations for the emulator: one
// organization with a management account, a root, organizational units
// nested under it and member accounts placed in them, and the read
// operations DescribeOrganization, DescribeAccount, ListAccounts,
// ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent and
// ListChildren in the AWS JSON 1.1 protocol (Organizations API reference).
//
// As in AWS, the listing operations answer the management account only
// (a delegated administrator is not modelled); DescribeOrganization
// answers every member; an account outside the organization gets
// AWSOrganizationsNotInUseException.
package organizations

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// TargetPrefix is the X-Amz-Target prefix of Organizations requests.
const TargetPrefix = "AWSOrganizationsV20161128."

// Account is a member account.
type Account struct {
	ID, Name, Email string
	Parent          string // the root or OU it is in
	Joined          time.Time
}

// Unit is an organizational unit.
type Unit struct {
	ID, Name, Parent string
}

// Organization is one organization. It is safe for concurrent use.
type Organization struct {
	id, management, rootID string

	mu       sync.RWMutex
	accounts map[string]*Account
	order    []string // accounts in joining order
	units    map[string]*Unit
	unitList []string
}

// New makes an organization whose management account is management (its
// first member, in the root).
func New(management string) *Organization {
	o := &Organization{
		id: "o-" + lowerID(10), management: management, rootID: "r-" + lowerID(4),
		accounts: map[string]*Account{}, units: map[string]*Unit{},
	}
	o.accounts[management] = &Account{ID: management, Name: "management", Email: management + "@example.com",
		Parent: o.rootID, Joined: time.Now().UTC()}
	o.order = []string{management}
	return o
}

// ID is the organization id, the value of aws:PrincipalOrgID.
func (o *Organization) ID() string { return o.id }

// RootID is the id of the organization's root.
func (o *Organization) RootID() string { return o.rootID }

// Management is the management account.
func (o *Organization) Management() string { return o.management }

// Contains reports whether account is a member.
func (o *Organization) Contains(account string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, ok := o.accounts[account]
	return ok
}

// CreateUnit adds an organizational unit under parent (the root or an OU)
// and returns its id.
func (o *Organization) CreateUnit(parent, name string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.parentExistsLocked(parent) {
		return "", fmt.Errorf("organizations: parent %s not found", parent)
	}
	id := "ou-" + o.rootID[2:] + "-" + lowerID(8)
	o.units[id] = &Unit{ID: id, Name: name, Parent: parent}
	o.unitList = append(o.unitList, id)
	return id, nil
}

// AddAccount makes account a member under parent (the root when empty),
// or moves it there if it is one.
func (o *Organization) AddAccount(account, name, parent string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if parent == "" {
		parent = o.rootID
	}
	if !o.parentExistsLocked(parent) {
		return fmt.Errorf("organizations: parent %s not found", parent)
	}
	if a, ok := o.accounts[account]; ok {
		a.Parent = parent
		return nil
	}
	if name == "" {
		name = "account-" + account
	}
	o.accounts[account] = &Account{ID: account, Name: name, Email: account + "@example.com", Parent: parent, Joined: time.Now().UTC()}
	o.order = append(o.order, account)
	return nil
}

func (o *Organization) parentExistsLocked(id string) bool {
	_, ok := o.units[id]
	return ok || id == o.rootID
}

// accountsLocked are the accounts under parent ("" for all), in joining
// order.
func (o *Organization) accountsLocked(parent string) []*Account {
	var out []*Account
	for _, id := range o.order {
		if a := o.accounts[id]; parent == "" || a.Parent == parent {
			out = append(out, a)
		}
	}
	return out
}

// unitsLocked are the OUs directly under parent, by name.
func (o *Organization) unitsLocked(parent string) []*Unit {
	var out []*Unit
	for _, id := range o.unitList {
		if u := o.units[id]; u.Parent == parent {
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (o *Organization) arn(kind, id string) string {
	return "arn:aws:organizations::" + o.management + ":" + kind + "/" + o.id + "/" + id
}

// AccountARN is a member account's ARN.
func (o *Organization) AccountARN(account string) string { return o.arn("account", account) }

func lowerID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ErrorCodes are the query-protocol codes of JSON errors (none: the
// Organizations API is JSON only).
var ErrorCodes core.QueryErrorCodes

func notInUse() *core.Error {
	return core.Errorf(http.StatusBadRequest, "AWSOrganizationsNotInUseException",
		"Your account is not a member of an organization.")
}

func accessDenied() *core.Error {
	return core.Errorf(http.StatusBadRequest, "AccessDeniedException", "You don't have permissions to access this resource.")
}
