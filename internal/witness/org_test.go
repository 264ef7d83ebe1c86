package witness_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// orgWitness is an organization on one witness: its management account's
// clients, and how accounts, OUs and an assumable role are made there (the
// emulator in Go, moto through its API).
type orgWitness struct {
	name    string
	cfg     aws.Config
	orgs    *organizations.Client
	sts     *sts.Client
	rootID  string
	roleARN string
	// addAccount makes a member and places it under parent, returning its id.
	addAccount func(t *testing.T, parent string) string
	createOU   func(t *testing.T, parent, name string) string
}

func emulatorOrg(t *testing.T) orgWitness {
	ctx, cancel := context.WithCancel(context.Background())
	o, err := emulator.StartOrganization(ctx, emulator.OrgOptions{Management: emulator.DefaultAccount, Members: []string{"222233334444"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = o.Close() })
	role, err := o.PutRole("222233334444", "witness-role", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"`+emulator.DefaultAccount+`"},"Action":"sts:AssumeRole"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	cfg := o.AWSConfig(emulator.AccessKeyID, "", "")
	return orgWitness{name: witness.Emulator, cfg: cfg, orgs: organizations.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg),
		rootID: o.RootID(), roleARN: role,
		addAccount: func(t *testing.T, parent string) string {
			next++
			id := fmt.Sprintf("7000000000%02d", next)
			if err := o.AddAccount(id, parent); err != nil {
				t.Fatal(err)
			}
			return id
		},
		createOU: func(t *testing.T, parent, name string) string {
			id, err := o.CreateUnit(parent, name)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}}
}

// motoOrg makes moto's organization (one per moto server: an existing one
// is reused) and uses the management account's own role ARN: moto's
// AssumeRole does not evaluate trust policies, which the emulator's tests
// cover.
func motoOrg(t *testing.T) orgWitness {
	w := witness.MotoWitness(t)
	ctx := context.Background()
	c := organizations.NewFromConfig(w.Cfg)
	if _, err := c.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AlreadyInOrganizationException" {
			t.Fatalf("moto CreateOrganization: %v", err)
		}
	}
	roots, err := c.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil || len(roots.Roots) != 1 {
		t.Fatalf("moto ListRoots: %+v, %v", roots, err)
	}
	rootID := aws.ToString(roots.Roots[0].Id)
	return orgWitness{name: witness.Moto, cfg: w.Cfg, orgs: c, sts: sts.NewFromConfig(w.Cfg), rootID: rootID,
		roleARN: "arn:aws:iam::123456789012:role/" + witness.Name("witness-role"),
		addAccount: func(t *testing.T, parent string) string {
			name := witness.Name("member")
			out, err := c.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String(name), Email: aws.String(name + "@example.com")})
			if err != nil {
				t.Fatalf("moto CreateAccount: %v", err)
			}
			id := aws.ToString(out.CreateAccountStatus.AccountId)
			if _, err := c.MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(id), SourceParentId: aws.String(rootID),
				DestinationParentId: aws.String(parent)}); err != nil {
				t.Fatalf("moto MoveAccount: %v", err)
			}
			return id
		},
		createOU: func(t *testing.T, parent, name string) string {
			out, err := c.CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{ParentId: aws.String(parent), Name: aws.String(name)})
			if err != nil {
				t.Fatalf("moto CreateOrganizationalUnit: %v", err)
			}
			return aws.ToString(out.OrganizationalUnit.Id)
		}}
}

// The same STS and Organizations assertions hold on the emulator and on
// moto: AssumeRole's session is an assumed-role ARN of the role's account
// that GetCallerIdentity names back (API_AssumeRole.md,
// API_GetCallerIdentity.md); accounts placed in an OU are listed under it;
// ListAccounts pages by MaxResults and NextToken and lists every account
// once (API_ListAccounts.md, API_ListAccountsForParent.md,
// API_ListChildren.md).
func TestOrganizationAgainstWitnesses(t *testing.T) {
	for _, start := range []func(*testing.T) orgWitness{emulatorOrg, motoOrg} {
		w := start(t)
		t.Run(w.name, func(t *testing.T) {
			ctx := context.Background()
			out, err := w.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(w.roleARN), RoleSessionName: aws.String("witness")})
			if err != nil {
				t.Fatal(err)
			}
			roleAccount := strings.Split(w.roleARN, ":")[4]
			roleName := w.roleARN[strings.LastIndex(w.roleARN, "/")+1:]
			wantARN := "arn:aws:sts::" + roleAccount + ":assumed-role/" + roleName + "/witness"
			if got := aws.ToString(out.AssumedRoleUser.Arn); got != wantARN || !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") {
				t.Fatalf("AssumeRole = %s %s, want %s and an ASIA key", got, aws.ToString(out.Credentials.AccessKeyId), wantARN)
			}
			session := w.cfg.Copy()
			session.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId),
				aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
			id, err := sts.NewFromConfig(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil || aws.ToString(id.Arn) != wantARN || aws.ToString(id.Account) != roleAccount {
				t.Fatalf("GetCallerIdentity with the session = %+v, %v; want %s", id, err, wantARN)
			}

			ou := w.createOU(t, w.rootID, witness.Name("pilot"))
			placed := map[string]bool{}
			for range 3 {
				placed[w.addAccount(t, ou)] = true
			}
			under, err := w.orgs.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(ou)})
			if err != nil || len(under.Accounts) != 3 {
				t.Fatalf("ListAccountsForParent = %+v, %v", under, err)
			}
			for _, a := range under.Accounts {
				if !placed[aws.ToString(a.Id)] {
					t.Fatalf("ListAccountsForParent lists %s, not placed there", aws.ToString(a.Id))
				}
			}
			children, err := w.orgs.ListChildren(ctx, &organizations.ListChildrenInput{ParentId: aws.String(w.rootID), ChildType: orgtypes.ChildTypeOrganizationalUnit})
			if err != nil || !hasChild(children.Children, ou) {
				t.Fatalf("ListChildren(root, OU) = %+v, %v; want %s", children, err, ou)
			}
			seen := map[string]bool{}
			p := organizations.NewListAccountsPaginator(w.orgs, &organizations.ListAccountsInput{MaxResults: aws.Int32(2)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Accounts) > 2 {
					t.Fatalf("a page of %d accounts with MaxResults 2", len(page.Accounts))
				}
				for _, a := range page.Accounts {
					if seen[aws.ToString(a.Id)] {
						t.Fatalf("ListAccounts lists %s twice", aws.ToString(a.Id))
					}
					seen[aws.ToString(a.Id)] = true
				}
			}
			for id := range placed {
				if !seen[id] {
					t.Fatalf("ListAccounts misses %s", id)
				}
			}
			desc, err := w.orgs.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
			if err != nil || !seen[aws.ToString(desc.Organization.MasterAccountId)] {
				t.Fatalf("DescribeOrganization = %+v, %v: the management account is listed too", desc, err)
			}
		})
	}
}

func hasChild(children []orgtypes.Child, id string) bool {
	for _, c := range children {
		if aws.ToString(c.Id) == id {
			return true
		}
	}
	return false
}
