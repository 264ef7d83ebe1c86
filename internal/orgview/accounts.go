// Package orgview gathers one view of every account of an AWS
// organization: it lists the organization's accounts (optionally only
// those under some OUs, or a given list), assumes each member
// deployment's read-only role in every region asked for, reads the
// deployment.Record the member stack published, and hands the view's own
// gathering that account's credentials and record, a bounded number of
// accounts at once. An account whose role cannot be assumed, or whose
// record is missing, is reported as not deployed, with which; the view's
// gathering says which deployments are behind or failing.
package orgview

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// The Organizations calls the listing makes.
type (
	ListAccountsAPI interface {
		ListAccounts(ctx context.Context, in *organizations.ListAccountsInput, optFns ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error)
	}
	ListAccountsForParentAPI interface {
		ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, optFns ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error)
	}
	ListChildrenAPI interface {
		ListChildren(ctx context.Context, in *organizations.ListChildrenInput, optFns ...func(*organizations.Options)) (*organizations.ListChildrenOutput, error)
	}
	// OrganizationsAPI is all of them (organizations.Client in production).
	OrganizationsAPI interface {
		ListAccountsAPI
		ListAccountsForParentAPI
		ListChildrenAPI
	}
)

var _ OrganizationsAPI = (*organizations.Client)(nil)

// Account is one account of the organization.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Partition is the ARN partition (aws, aws-cn, aws-us-gov), from the
	// account's ARN: the reader role's ARN is in it.
	Partition string `json:"-"`
	// State is the account's state (ACTIVE, SUSPENDED, ...).
	State string `json:"state"`
}

// Active reports an account the view can read: one that is neither
// suspended nor closing nor closed.
func (a Account) Active() bool {
	switch a.State {
	case string(orgtypes.AccountStateSuspended), string(orgtypes.AccountStatePendingClosure), string(orgtypes.AccountStateClosed):
		return false
	}
	return true
}

func accountOf(a orgtypes.Account) Account {
	acc := Account{ID: aws.ToString(a.Id), Name: aws.ToString(a.Name), Partition: partitionOf(aws.ToString(a.Arn)), State: string(a.State)}
	// Status is the field State replaces (Organizations documents both
	// during the transition); older answers carry only Status.
	if acc.State == "" {
		acc.State = string(a.Status)
	}
	return acc
}

// partitionOf is the partition of an ARN, "aws" when it names none.
func partitionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) < 3 || parts[0] != "arn" || parts[1] == "" {
		return "aws"
	}
	return parts[1]
}

// Selection says which accounts to view: all of the organization, or
// only those under the OUs (or roots) named, and/or only those listed.
type Selection struct {
	OUs      []string
	Accounts []string
}

// ListAccounts lists the selected accounts of the organization, sorted by
// id, each once. An account id in Selection.Accounts that the
// organization does not have is an error: a typo would otherwise look
// like an account with nothing to report.
func ListAccounts(ctx context.Context, api OrganizationsAPI, sel Selection) ([]Account, error) {
	var all []Account
	var err error
	if len(sel.OUs) == 0 {
		all, err = listAll(ctx, api)
	} else {
		for _, ou := range sel.OUs {
			under, err := listUnder(ctx, api, ou)
			if err != nil {
				return nil, err
			}
			all = append(all, under...)
		}
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b Account) int { return strings.Compare(a.ID, b.ID) })
	all = slices.CompactFunc(all, func(a, b Account) bool { return a.ID == b.ID })
	if len(sel.Accounts) == 0 {
		return all, nil
	}
	var chosen []Account
	for _, id := range sel.Accounts {
		i, found := slices.BinarySearchFunc(all, id, func(a Account, id string) int { return strings.Compare(a.ID, id) })
		if !found {
			if len(sel.OUs) > 0 {
				return nil, fmt.Errorf("account %s is not under %s", id, strings.Join(sel.OUs, ", "))
			}
			return nil, fmt.Errorf("account %s is not in the organization", id)
		}
		chosen = append(chosen, all[i])
	}
	slices.SortFunc(chosen, func(a, b Account) int { return strings.Compare(a.ID, b.ID) })
	return slices.CompactFunc(chosen, func(a, b Account) bool { return a.ID == b.ID }), nil
}

func listAll(ctx context.Context, api ListAccountsAPI) ([]Account, error) {
	var out []Account
	p := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the organization's accounts: %w", err)
		}
		for _, a := range page.Accounts {
			out = append(out, accountOf(a))
		}
	}
	return out, nil
}

// maxDepth bounds the walk down the OU tree: Organizations allows five
// levels of OUs under the root.
const maxDepth = 8

// listUnder lists the accounts under parent (an OU or a root), at any
// depth.
func listUnder(ctx context.Context, api OrganizationsAPI, parent string) ([]Account, error) {
	var out []Account
	var walk func(parent string, depth int) error
	walk = func(parent string, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("the OU tree under %s is deeper than %d levels", parent, maxDepth)
		}
		p := organizations.NewListAccountsForParentPaginator(api, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing the accounts of %s: %w", parent, err)
			}
			for _, a := range page.Accounts {
				out = append(out, accountOf(a))
			}
		}
		c := organizations.NewListChildrenPaginator(api, &organizations.ListChildrenInput{ParentId: aws.String(parent), ChildType: orgtypes.ChildTypeOrganizationalUnit})
		for c.HasMorePages() {
			page, err := c.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing the OUs of %s: %w", parent, err)
			}
			for _, ch := range page.Children {
				if err := walk(aws.ToString(ch.Id), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(parent, 0)
}
