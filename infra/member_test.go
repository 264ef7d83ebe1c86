package main

import (
	"strings"
	"testing"
)

// TestMemberGrantsAnAccountsKeyByARN: with one target region, an account
// may name its key by ARN; the encrypt role (the same in every account)
// is granted it, through S3 only.
func TestMemberGrantsAnAccountsKeyByARN(t *testing.T) {
	key := "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cfg := orgExample(t, func(c map[string]any) {
		o := c["organization"].(map[string]any)
		o["targets"] = map[string]any{"organizationalUnitIds": []string{"ou-a1b2-pilot0001"}, "regions": []string{"eu-west-1"}}
		o["accounts"] = map[string]any{"444455556666": map[string]any{"kmsKeyArn": key}}
	})
	m := synthOrganization(t, cfg).templates[MemberStackName]
	enc := roleDocument(m, "EncryptServiceRole")
	st := bySid(t, enc, "TargetKeys")
	if js(st.Resource) != `"`+key+`"` || !strings.Contains(js(st.Condition), "kms:ViaService") {
		t.Errorf("target keys granted %s (%s), want the account's key through S3", js(st.Resource), js(st.Condition))
	}
}

// TestSingleAccountStackHasNoOrganizationParts: without an organization
// config the stack is the one account's, as before: no parameters, no
// deployment record, no named role, reports in its own bucket.
func TestSingleAccountStackHasNoOrganizationParts(t *testing.T) {
	tmpl, _ := synth(t, exampleConfig(t))
	for _, typ := range []string{"AWS::SSM::Parameter", "AWS::CloudFormation::StackSet"} {
		if n := len(resourcesOf(tmpl, typ)); n != 0 {
			t.Errorf("%d %s", n, typ)
		}
	}
	for id, r := range resourcesOf(tmpl, "AWS::IAM::Role") {
		if r["RoleName"] != nil {
			t.Errorf("role %s is named %v", id, r["RoleName"])
		}
	}
	for name := range tmpl["Parameters"].(map[string]any) {
		if name != "BootstrapVersion" {
			t.Errorf("parameter %s", name)
		}
	}
	env := js(resourcesOf(tmpl, "AWS::Lambda::Function"))
	for _, unwanted := range []string{"S3REKEY_REPORT_REGION", "S3REKEY_ACCOUNT_POLICIES"} {
		if strings.Contains(env, unwanted) {
			t.Errorf("a single account's functions have %s", unwanted)
		}
	}
}

// memberShape is the member template's shape for a configuration, with
// the organization example's organization entry.
func memberShape(t *testing.T, cfg *Config) shape {
	t.Helper()
	cfg.Organization = orgExample(t, nil).Organization
	if err := cfg.Organization.validate(cfg); err != nil {
		t.Fatal(err)
	}
	props := standIn(t, cfg)
	props.Member = &MemberProps{Organization: cfg.Organization, PublishDir: t.TempDir()}
	published, err := publishMember(props)
	if err != nil {
		t.Fatal(err)
	}
	return shapeOfTemplate(published.Template)
}

// TestMemberStackSizeIndependentOfBuckets: the member template keeps the
// single account's property (TestStackSizeIndependentOfBuckets, whose
// limits apply): the same resources and function environments for 2
// buckets, 5,000 and rules over 5,000.
func TestMemberStackSizeIndependentOfBuckets(t *testing.T) {
	small := memberShape(t, scaleConfig(t, 2, false))
	for name, cfg := range map[string]*Config{"5,000 explicit buckets": scaleConfig(t, 5000, false), "rules over 5,000 buckets": scaleConfig(t, 5000, true)} {
		t.Run(name, func(t *testing.T) {
			big := memberShape(t, cfg)
			if big.resources != small.resources || js(big.types) != js(small.types) || js(big.env) != js(small.env) {
				t.Errorf("%d resources %v, environments %v; with 2 buckets %d %v %v", big.resources, big.types, big.env, small.resources, small.types, small.env)
			}
			for _, sh := range []shape{small, big} {
				if sh.resources > 500 || sh.size >= 1<<20 || sh.patternSize > 4096 || maxOf(sh.env) > 4096 || maxOf(sh.rolePolicy) > 10240 {
					t.Errorf("%d resources, %d template bytes, event pattern %d, environment %d, role policy %d", sh.resources, sh.size, sh.patternSize, maxOf(sh.env), maxOf(sh.rolePolicy))
				}
			}
			t.Logf("member: %d resources, template %d bytes (2 buckets: %d)", big.resources, big.size, small.size)
		})
	}
}
