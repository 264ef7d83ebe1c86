package emulator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// Accounts of the organization tests: a management account, a central
// (reports) account and two members, and one account outside.
const (
	mgmtAccount    = "111122223333"
	centralAccount = "222233334444"
	memberA        = "333344445555"
	memberB        = "444455556666"
	outsider       = "999988887777"
)

// orgClients are the SDK clients of one identity of the organization.
type orgClients struct {
	cfg  aws.Config
	s3   *s3.Client
	kms  *kms.Client
	sts  *sts.Client
	orgs *organizations.Client
}

func startOrg(t *testing.T) *emulator.Organization {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o, err := emulator.StartOrganization(ctx, emulator.OrgOptions{
		Management: mgmtAccount, Members: []string{centralAccount, memberA, memberB}, Outside: []string{outsider},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = o.Close() })
	return o
}

// orgAs signs as an access key (secret and token for a session).
func orgAs(o *emulator.Organization, accessKey, secret, token string) orgClients {
	cfg := o.AWSConfig(accessKey, secret, token)
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return orgClients{cfg: cfg, s3: s3.NewFromConfig(cfg, emulator.PathStyle), kms: kms.NewFromConfig(cfg),
		sts: sts.NewFromConfig(cfg), orgs: organizations.NewFromConfig(cfg)}
}

// root is the clients of an account's root user.
func root(o *emulator.Organization, account string) orgClients {
	return orgAs(o, emulator.RootAccessKey(account), "", "")
}

// assume assumes a role and returns the session's clients.
func assume(t *testing.T, c orgClients, roleARN string) orgClients {
	t.Helper()
	out, err := c.sts.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatalf("AssumeRole %s: %v", roleARN, err)
	}
	cr := out.Credentials
	return orgClientsFrom(c, aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
}

func orgClientsFrom(c orgClients, key, secret, token string) orgClients {
	cfg := c.cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(staticProvider{aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token}})
	return orgClients{cfg: cfg, s3: s3.NewFromConfig(cfg, emulator.PathStyle), kms: kms.NewFromConfig(cfg),
		sts: sts.NewFromConfig(cfg), orgs: organizations.NewFromConfig(cfg)}
}

type staticProvider struct{ creds aws.Credentials }

func (p staticProvider) Retrieve(context.Context) (aws.Credentials, error) { return p.creds, nil }

// putRole creates a role, failing the test on error.
func putRole(t *testing.T, o *emulator.Organization, account, name, trust, policy string) string {
	t.Helper()
	var p []byte
	if policy != "" {
		p = []byte(policy)
	}
	arn, err := o.PutRole(account, name, []byte(trust), p)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// policy fills {ORG} and {ACCOUNT} placeholders in a policy document.
func policy(doc string, o *emulator.Organization, account string) string {
	return strings.NewReplacer("{ORG}", o.ID(), "{ACCOUNT}", account).Replace(doc)
}
