package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// adminRole is the role the tests assume in a member account to set it
// up (moto assumes any role; the emulator's organization has it made).
const adminRole = "admin"

// orgBackend makes the organization of a witness: each server has its
// own way (moto: the Organizations API; the emulator: its Go API, as
// AWS's accounts are made outside the Organizations API's read calls).
type orgBackend interface {
	// createUnit makes an OU under the root and returns its id.
	createUnit(t *testing.T, name string) string
	// createAccount makes a member account in ou, with the admin role and
	// the reader role a member stack creates, and returns its id.
	createAccount(t *testing.T, name, ou string) string
	// managementKey is the access key of the management account.
	managementKey() string
}

// orgWitness is a witness with its organization.
type orgWitness struct {
	witness.Witness
	backend orgBackend
}

// orgWitnesses are the servers the organization view is checked against:
// each serves Organizations, STS AssumeRole (the assumed role's
// credentials acting in the role's account), SSM, DynamoDB, SQS and S3.
func orgWitnesses(t *testing.T) []orgWitness {
	return []orgWitness{emulatorOrgWitness(t), {witness.MotoWitness(t), motoOrg{witness.MotoWitness(t)}}}
}

// motoOrg makes moto's organization through the Organizations API; the
// moto server is shared by the test binary: one organization.
type motoOrg struct{ w witness.Witness }

func (m motoOrg) root(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	org := organizations.NewFromConfig(m.w.Cfg)
	if _, err := org.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil &&
		!strings.Contains(err.Error(), "AlreadyInOrganization") {
		t.Fatalf("CreateOrganization: %v", err)
	}
	roots, err := org.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil || len(roots.Roots) != 1 {
		t.Fatalf("ListRoots = %v, %v", roots, err)
	}
	return aws.ToString(roots.Roots[0].Id)
}

func (m motoOrg) createUnit(t *testing.T, name string) string {
	t.Helper()
	ou, err := organizations.NewFromConfig(m.w.Cfg).CreateOrganizationalUnit(context.Background(),
		&organizations.CreateOrganizationalUnitInput{ParentId: aws.String(m.root(t)), Name: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateOrganizationalUnit: %v", err)
	}
	return aws.ToString(ou.OrganizationalUnit.Id)
}

func (m motoOrg) createAccount(t *testing.T, name, ou string) string {
	t.Helper()
	ctx := context.Background()
	org := organizations.NewFromConfig(m.w.Cfg)
	out, err := org.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String(name), Email: aws.String(name + "@example.com")})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	id := aws.ToString(out.CreateAccountStatus.AccountId)
	if id == "" {
		t.Fatalf("CreateAccount %s: no account id yet (state %s)", name, out.CreateAccountStatus.State)
	}
	if _, err := org.MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(id), SourceParentId: aws.String(m.root(t)),
		DestinationParentId: aws.String(ou)}); err != nil {
		t.Fatalf("MoveAccount: %v", err)
	}
	return id
}

func (motoOrg) managementKey() string { return "testing" }

// emuOrg is an emulator organization of its own for the test.
type emuOrg struct {
	o     *emulator.Organization
	count *int
}

func emulatorOrgWitness(t *testing.T) orgWitness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o, err := emulator.StartOrganization(ctx, emulator.OrgOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = o.Close() })
	cfg := o.AWSConfig(emulator.RootAccessKey(o.Management()), "", "")
	w := witness.Witness{Name: witness.Emulator, Endpoint: o.URL(), Cfg: cfg, S3: s3.NewFromConfig(cfg, emulator.PathStyle),
		SQS: sqs.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg), DynamoDB: dynamodb.NewFromConfig(cfg), Emu: o.Account(o.Management())}
	return orgWitness{w, emuOrg{o: o, count: new(int)}}
}

func (e emuOrg) createUnit(t *testing.T, name string) string {
	t.Helper()
	ou, err := e.o.CreateUnit(e.o.RootID(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ou
}

// createAccount adds an account with the roles a member stack and the
// test's setup need: the reader with the member stack's reader policy
// (permissions.Reader) over the names the test gives its resources, in
// the emulator's region only, as the member stack deployed there would
// (deployment.ReaderRoleName): the view's second region has no reader,
// and so no deployment.
func (e emuOrg) createAccount(t *testing.T, _, ou string) string {
	t.Helper()
	*e.count++
	id := "5555000000" + string(rune('0'+*e.count/10)) + string(rune('0'+*e.count%10))
	if err := e.o.AddAccount(id, ou); err != nil {
		t.Fatal(err)
	}
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e.o.Management() +
		`:root"},"Action":"sts:AssumeRole"}]}`)
	if _, err := e.o.PutRole(id, adminRole, trust, nil); err != nil {
		t.Fatal(err)
	}
	region := e.o.Region()
	reader := permissions.PolicyDocument(permissions.Reader(
		permissions.Resources{Partition: "aws", Region: region, Account: id,
			JobsTableARN:       "arn:aws:dynamodb:" + region + ":" + id + ":table/s3rekey-jobs-*",
			InventoryBucketARN: "arn:aws:s3:::inventory-" + id},
		permissions.View{DeploymentParameterARN: "arn:aws:ssm:" + region + ":" + id + ":parameter" + deployment.DefaultParameterName,
			QueueARNs: []string{"arn:aws:sqs:" + region + ":" + id + ":s3rekey-*"}}))
	if _, err := e.o.PutRole(id, deployment.ReaderRoleName(deployment.DefaultReaderRoleName, region), trust, reader); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e emuOrg) managementKey() string { return emulator.RootAccessKey(e.o.Management()) }
