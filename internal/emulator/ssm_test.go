package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// TestSSMParameters: PutParameter creates a String parameter at version
// 1 and refuses to replace it without Overwrite (ParameterAlreadyExists);
// with Overwrite it goes one version up; GetParameter and DeleteParameter
// of a missing parameter answer ParameterNotFound, all HTTP 400 (Systems
// Manager API Reference: PutParameter, GetParameter, DeleteParameter,
// "Errors").
func TestSSMParameters(t *testing.T) {
	e := start(t, emulator.Options{})
	c := ssm.NewFromConfig(e.cfg)
	ctx := context.Background()
	name := "/s3rekey/deployment"
	put := func(value string, overwrite bool) (*ssm.PutParameterOutput, error) {
		return c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value),
			Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(overwrite)})
	}
	out, err := put("one", false)
	if err != nil || out.Version != 1 {
		t.Fatalf("PutParameter = %+v, %v; want version 1", out, err)
	}
	_, err = put("two", false)
	var exists *ssmtypes.ParameterAlreadyExists
	if !errors.As(err, &exists) || httpStatus(err) != http.StatusBadRequest {
		t.Errorf("PutParameter of an existing name without Overwrite: %v, want ParameterAlreadyExists (400)", err)
	}
	if out, err = put("two", true); err != nil || out.Version != 2 {
		t.Fatalf("PutParameter with Overwrite = %+v, %v; want version 2", out, err)
	}
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(" " + name + " ")})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	wantARN := "arn:aws:ssm:" + e.emu.Region() + ":" + e.emu.Account() + ":parameter/s3rekey/deployment"
	if aws.ToString(p.Value) != "two" || p.Version != 2 || p.Type != ssmtypes.ParameterTypeString || aws.ToString(p.ARN) != wantARN ||
		aws.ToString(p.Name) != name || p.LastModifiedDate == nil {
		t.Errorf("GetParameter = %+v, want value two at version 2, ARN %s", p, wantARN)
	}
	if _, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(wantARN)}); err != nil {
		t.Errorf("GetParameter by ARN: %v", err)
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	var missing *ssmtypes.ParameterNotFound
	for op, call := range map[string]func() error{
		"GetParameter": func() error {
			_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
			return err
		},
		"DeleteParameter": func() error {
			_, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
			return err
		},
	} {
		if err := call(); !errors.As(err, &missing) || httpStatus(err) != http.StatusBadRequest {
			t.Errorf("%s of a deleted parameter: %v, want ParameterNotFound (400)", op, err)
		}
	}
	if _, err := put("new", false); err != nil {
		t.Errorf("PutParameter after DeleteParameter: %v", err)
	}
	// Parameters are regional: another region has none of this one's.
	west := ssm.NewFromConfig(e.cfg, func(o *ssm.Options) { o.Region = "eu-west-1" })
	if _, err := west.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)}); !errors.As(err, &missing) {
		t.Errorf("GetParameter in another region: %v, want ParameterNotFound", err)
	}
}

// TestSSMPerAccountAndIAM: each account of an organization has its own
// parameters; a role reads its account's parameter only with
// ssm:GetParameter on the parameter's ARN, whose resource part drops the
// name's leading slash (Systems Manager User Guide, "Restricting access
// to Parameter Store parameters using IAM policies").
func TestSSMPerAccountAndIAM(t *testing.T) {
	o := startOrg(t)
	ctx := context.Background()
	name := "/s3rekey/deployment"
	for _, acct := range []string{memberA, memberB} {
		c := ssm.NewFromConfig(root(o, acct).cfg)
		if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("record of " + acct),
			Type: ssmtypes.ParameterTypeString}); err != nil {
			t.Fatalf("PutParameter in %s: %v", acct, err)
		}
	}
	trust := policy(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::{ACCOUNT}:root"},"Action":"sts:AssumeRole"}]}`, o, mgmtAccount)
	reader := putRole(t, o, memberA, "reader", trust,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/s3rekey/*"}]}`)
	narrow := putRole(t, o, memberA, "other", trust,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/elsewhere/*"}]}`)
	mgmt := root(o, mgmtAccount)

	c := ssm.NewFromConfig(assume(t, mgmt, reader).cfg)
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil || aws.ToString(got.Parameter.Value) != "record of "+memberA {
		t.Fatalf("GetParameter as %s's reader = %+v, %v; want %s's record", memberA, got, err, memberA)
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("x"), Overwrite: aws.Bool(true)})
	if apiCode(err) != "AccessDeniedException" {
		t.Errorf("PutParameter as the reader: %v, want AccessDeniedException", err)
	}
	_, err = ssm.NewFromConfig(assume(t, mgmt, narrow).cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(api.ErrorMessage(), "parameter/s3rekey/deployment") {
		t.Errorf("GetParameter outside the role's resources: %v, want AccessDeniedException naming the parameter's ARN", err)
	}
	_, err = ssm.NewFromConfig(root(o, mgmtAccount).cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var missing *ssmtypes.ParameterNotFound
	if !errors.As(err, &missing) {
		t.Errorf("GetParameter in the management account: %v, want ParameterNotFound (the members' parameters are theirs)", err)
	}
}
