package emulator_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// AssumeRole is allowed by the role's trust policy, with aws:PrincipalOrgID,
// aws:PrincipalAccount and sts:ExternalId in the request context, and
// across accounts by the caller's identity policy too (STS API reference,
// API_AssumeRole.md; IAM User Guide,
// reference_policies_evaluation-logic-cross-account.md,
// reference_policies_condition-keys.md "aws:PrincipalOrgID",
// id_roles_create_for-user_externalid.md).
func TestAssumeRoleTrust(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	orgTrust := putRole(t, o, memberA, "org-trust", policy(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"{ORG}"}}}]}`, o, ""), "")
	centralTrust := putRole(t, o, memberA, "central-trust", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"`+centralAccount+`"},"Action":"sts:AssumeRole"}]}`, "")
	external := putRole(t, o, memberA, "external-id", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::`+centralAccount+`:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"s3rekey-42"}}}]}`, "")
	noAssume, err := o.AddUser(centralAccount, "reader", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		caller     orgClients
		role       string
		externalID string
		wantOK     bool
	}{
		{"an organization member by aws:PrincipalOrgID", root(o, memberB), orgTrust, "", true},
		{"an account outside the organization", root(o, outsider), orgTrust, "", false},
		{"the trusted account", root(o, centralAccount), centralTrust, "", true},
		{"an untrusted account of the organization", root(o, memberB), centralTrust, "", false},
		{"a trusted account's user whose identity policy does not allow sts:AssumeRole", orgAs(o, noAssume, "", ""), centralTrust, "", false},
		{"the right sts:ExternalId", root(o, centralAccount), external, "s3rekey-42", true},
		{"a wrong sts:ExternalId", root(o, centralAccount), external, "guess", false},
		{"no sts:ExternalId", root(o, centralAccount), external, "", false},
		{"a role that does not exist", root(o, memberB), "arn:aws:iam::" + memberA + ":role/none", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &sts.AssumeRoleInput{RoleArn: aws.String(tc.role), RoleSessionName: aws.String("s3rekey")}
			if tc.externalID != "" {
				in.ExternalId = aws.String(tc.externalID)
			}
			out, err := tc.caller.sts.AssumeRole(ctx, in)
			if !tc.wantOK {
				if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
					t.Fatalf("AssumeRole = %v, want 403 AccessDenied", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantARN := "arn:aws:sts::" + memberA + ":assumed-role/" + tc.role[strings.LastIndex(tc.role, "/")+1:] + "/s3rekey"
			if got := aws.ToString(out.AssumedRoleUser.Arn); got != wantARN {
				t.Fatalf("AssumedRoleUser.Arn = %s, want %s", got, wantARN)
			}
			session := orgClientsFrom(tc.caller, aws.ToString(out.Credentials.AccessKeyId),
				aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
			id, err := session.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(id.Account) != memberA || aws.ToString(id.Arn) != wantARN {
				t.Fatalf("GetCallerIdentity = %s %s, want %s %s", aws.ToString(id.Account), aws.ToString(id.Arn), memberA, wantARN)
			}
		})
	}
}

// AssumeRole validates its input before any trust: a session name of 2 to
// 64 characters and DurationSeconds from 900 to the role's maximum
// (API_AssumeRole.md, Request Parameters).
func TestAssumeRoleValidation(t *testing.T) {
	o := startOrg(t)
	role := putRole(t, o, memberA, "r", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`, "")
	cases := []struct {
		name     string
		session  string
		duration int32
	}{
		{"session name too short", "x", 0},
		{"session name with a space", "a b", 0},
		{"duration under 900 seconds", "ok", 899},
		{"duration over the role's maximum", "ok", 3601},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(tc.session)}
			if tc.duration != 0 {
				in.DurationSeconds = aws.Int32(tc.duration)
			}
			_, err := root(o, memberB).sts.AssumeRole(context.Background(), in)
			if apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
				t.Fatalf("AssumeRole = %v, want 400 ValidationError", err)
			}
		})
	}
}

// An unknown access key is refused (STS: InvalidClientTokenId; S3:
// InvalidAccessKeyId).
func TestOrganizationUnknownAccessKey(t *testing.T) {
	o := startOrg(t)
	c := orgAs(o, "AKIAUNKNOWN000000000", "", "")
	if _, err := c.sts.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("GetCallerIdentity = %v, want InvalidClientTokenId", err)
	}
	if _, err := c.s3.ListBuckets(context.Background(), nil); apiCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("ListBuckets = %v, want InvalidAccessKeyId", err)
	}
}

// ListAccounts pages by MaxResults (at most 20) and NextToken; the OU tree
// is read with ListRoots, ListOrganizationalUnitsForParent,
// ListAccountsForParent and ListChildren; only the management account may
// list, and an account of no organization is told it is in none
// (Organizations API reference: API_ListAccounts.md, API_ListRoots.md,
// API_ListOrganizationalUnitsForParent.md, API_ListAccountsForParent.md,
// API_ListChildren.md, API_DescribeOrganization.md).
func TestOrganizationsListAccountsAndTree(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	workloads, err := o.CreateUnit(o.RootID(), "workloads")
	if err != nil {
		t.Fatal(err)
	}
	pilot, err := o.CreateUnit(workloads, "pilot")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.AddAccount(memberA, pilot); err != nil { // moves it
		t.Fatal(err)
	}
	want := map[string]bool{mgmtAccount: true, centralAccount: true, memberA: true, memberB: true}
	for i := range 20 {
		id := "5000000000" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		if err := o.AddAccount(id, workloads); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	mgmt := root(o, mgmtAccount)
	pages := 0
	got := map[string]bool{}
	p := organizations.NewListAccountsPaginator(mgmt.orgs, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range out.Accounts {
			if aws.ToString(a.Arn) != "arn:aws:organizations::"+mgmtAccount+":account/"+o.ID()+"/"+aws.ToString(a.Id) || a.Status != orgtypes.AccountStatusActive {
				t.Fatalf("account %+v", a)
			}
			got[aws.ToString(a.Id)] = true
		}
	}
	if pages != 2 || len(got) != len(want) {
		t.Fatalf("ListAccounts: %d pages, %d accounts; want 2 pages of %d accounts", pages, len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("ListAccounts misses %s", id)
		}
	}
	if _, err := mgmt.orgs.ListAccounts(ctx, &organizations.ListAccountsInput{MaxResults: aws.Int32(21)}); apiCode(err) != "InvalidInputException" {
		t.Fatalf("MaxResults 21 = %v, want InvalidInputException", err)
	}

	roots, err := mgmt.orgs.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil || len(roots.Roots) != 1 || aws.ToString(roots.Roots[0].Id) != o.RootID() {
		t.Fatalf("ListRoots = %+v, %v", roots, err)
	}
	ous, err := mgmt.orgs.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(workloads)})
	if err != nil || len(ous.OrganizationalUnits) != 1 || aws.ToString(ous.OrganizationalUnits[0].Id) != pilot || aws.ToString(ous.OrganizationalUnits[0].Name) != "pilot" {
		t.Fatalf("ListOrganizationalUnitsForParent = %+v, %v", ous, err)
	}
	inPilot, err := mgmt.orgs.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(pilot)})
	if err != nil || len(inPilot.Accounts) != 1 || aws.ToString(inPilot.Accounts[0].Id) != memberA {
		t.Fatalf("ListAccountsForParent(pilot) = %+v, %v", inPilot, err)
	}
	children, err := mgmt.orgs.ListChildren(ctx, &organizations.ListChildrenInput{ParentId: aws.String(o.RootID()), ChildType: orgtypes.ChildTypeAccount})
	if err != nil || len(children.Children) != 3 { // management, central and member B stay in the root
		t.Fatalf("ListChildren(root, ACCOUNT) = %+v, %v", children, err)
	}
	if _, err := mgmt.orgs.ListChildren(ctx, &organizations.ListChildrenInput{ParentId: aws.String("ou-none-00000000"), ChildType: orgtypes.ChildTypeAccount}); apiCode(err) != "ParentNotFoundException" {
		t.Fatalf("ListChildren(unknown) = %v, want ParentNotFoundException", err)
	}

	if _, err := root(o, memberB).orgs.ListAccounts(ctx, &organizations.ListAccountsInput{}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("member ListAccounts = %v, want AccessDeniedException", err)
	}
	desc, err := root(o, memberB).orgs.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil || aws.ToString(desc.Organization.Id) != o.ID() || aws.ToString(desc.Organization.MasterAccountId) != mgmtAccount {
		t.Fatalf("member DescribeOrganization = %+v, %v", desc, err)
	}
	if _, err := root(o, outsider).orgs.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); apiCode(err) != "AWSOrganizationsNotInUseException" {
		t.Fatalf("outsider DescribeOrganization = %v, want AWSOrganizationsNotInUseException", err)
	}
}

// The default access key is the management account's root, so tools made
// for one account keep working against an organization.
func TestOrganizationDefaultKeyIsManagement(t *testing.T) {
	o := startOrg(t)
	id, err := orgAs(o, emulator.AccessKeyID, "", "").sts.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != mgmtAccount || aws.ToString(id.Arn) != "arn:aws:iam::"+mgmtAccount+":root" {
		t.Fatalf("GetCallerIdentity = %+v, %v", id, err)
	}
}

// A session's credentials end at their Expiration: requests then answer
// ExpiredToken (S3) and ExpiredTokenException (JSON services)
// (API_AssumeRole.md, DurationSeconds; S3 error responses, ExpiredToken).
func TestAssumedRoleSessionExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := emulator.StartOrganization(ctx, emulator.OrgOptions{Management: mgmtAccount, Members: []string{memberA}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	role := putRole(t, o, memberA, "short", reporterTrust(mgmtAccount), "")
	out, err := root(o, mgmtAccount).sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("short"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	if exp := aws.ToTime(out.Credentials.Expiration); exp.Sub(now) < 899*time.Second || exp.Sub(now) > 900*time.Second {
		t.Fatalf("Expiration %s is not 900 s after %s", exp, now)
	}
	session := orgClientsFrom(root(o, mgmtAccount), aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	if _, err := session.s3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("a live session: %v", err)
	}
	mu.Lock()
	now = now.Add(901 * time.Second)
	mu.Unlock()
	if _, err := session.s3.ListBuckets(ctx, &s3.ListBucketsInput{}); apiCode(err) != "ExpiredToken" {
		t.Fatalf("S3 with an expired session = %v, want ExpiredToken", err)
	}
	if _, err := session.kms.ListKeys(ctx, &kms.ListKeysInput{}); apiCode(err) != "ExpiredTokenException" {
		t.Fatalf("KMS with an expired session = %v, want ExpiredTokenException", err)
	}
}

// The admin endpoint answers for the account ?account= names.
func TestOrganizationAdminCountsPerAccount(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	if _, err := root(o, memberA).s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("counted")}); err != nil {
		t.Fatal(err)
	}
	counts := func(account string) string {
		resp, err := http.Get(o.URL() + "/_emulator/counts?account=" + account)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if a, b := counts(memberA), counts(memberB); !strings.Contains(a, "CreateBucket") || strings.Contains(b, "CreateBucket") {
		t.Fatalf("counts of A %s, of B %s: want CreateBucket in A's only", a, b)
	}
	if got := o.Account(memberA).CountOf("s3", "CreateBucket", "counted"); got != 1 {
		t.Fatalf("member A counted %d CreateBucket, want 1", got)
	}
}

// A change to a role's identity policy applies to its sessions already
// issued: permissions are evaluated at each request.
func TestRolePolicyChangeReachesLiveSessions(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	trust := reporterTrust(mgmtAccount)
	role := putRole(t, o, memberA, "changing", trust, "")
	session := assume(t, root(o, mgmtAccount), role)
	if _, err := session.s3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("before the change: %v", err)
	}
	putRole(t, o, memberA, "changing", trust, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`)
	if _, err := session.s3.ListBuckets(ctx, &s3.ListBucketsInput{}); apiCode(err) != "AccessDenied" {
		t.Fatalf("after denying s3:* = %v, want AccessDenied", err)
	}
}
