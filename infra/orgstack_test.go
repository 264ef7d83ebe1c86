package main

import (
	"strings"
	"testing"
)

// TestOrganizationStack: the StackSet deploys the published member
// template, service-managed, to the target OUs and regions and to
// accounts added later; the central report bucket and key let the
// organization's members write their own reports and nothing else.
func TestOrganizationStack(t *testing.T) {
	cfg := orgExample(t, nil)
	org := cfg.Organization
	s := synthOrganization(t, cfg)
	o := s.templates[OrganizationStackName]

	t.Run("StackSet", func(t *testing.T) {
		_, ss := one(t, o, "AWS::CloudFormation::StackSet")
		// Service-managed permissions and automatic deployment to accounts
		// added to the target OUs
		// (docs/AWSCloudFormation/latest/UserGuide/stacksets-concepts.md,
		// "Permission models for StackSets";
		// stacksets-orgs-manage-auto-deployment.md); a delegated
		// administrator calls as DELEGATED_ADMIN
		// (stacksets-orgs-delegated-admin.md).
		if ss["PermissionModel"] != "SERVICE_MANAGED" || ss["CallAs"] != "DELEGATED_ADMIN" {
			t.Errorf("permission model %v, call as %v", ss["PermissionModel"], ss["CallAs"])
		}
		if js(ss["AutoDeployment"]) != `{"Enabled":true,"RetainStacksOnAccountRemoval":true}` {
			t.Errorf("auto deployment %s", js(ss["AutoDeployment"]))
		}
		groups := asList(ss["StackInstancesGroup"])
		if len(groups) != 1 || js(groups[0]) != `{"DeploymentTargets":{"OrganizationalUnitIds":["ou-a1b2-pilot0001"]},"Regions":["us-east-1","eu-west-1"]}` {
			t.Errorf("stack instances %s", js(groups))
		}
		if js(ss["ManagedExecution"]) != `{"Active":true}` {
			t.Errorf("managed execution %s", js(ss["ManagedExecution"]))
		}
		if !strings.Contains(js(ss["Capabilities"]), "CAPABILITY_NAMED_IAM") {
			t.Errorf("capabilities %s: the member names its reader role", js(ss["Capabilities"]))
		}
		url := js(ss["TemplateURL"])
		if !strings.Contains(url, "https://"+org.CodeBucketPrefix+"-"+org.CentralRegion+".s3.") || !strings.Contains(url, "/s3rekey/member-") {
			t.Errorf("template URL %s, want the published member template in the central region's code bucket", url)
		}
		params := map[string]string{}
		for _, p := range asList(ss["Parameters"]) {
			pm := p.(map[string]any)
			params[pm["ParameterKey"].(string)] = js(pm["ParameterValue"])
		}
		if !strings.Contains(params[ParamReportKeyArn], "ReportKey") || !strings.Contains(params[ParamReportKeyArn], "Arn") {
			t.Errorf("the StackSet passes %s as the central report key", params[ParamReportKeyArn])
		}
		// Every code parameter of the member template is passed, with
		// the member template's default (what was published).
		member := s.templates[MemberStackName]["Parameters"].(map[string]any)
		for name, p := range member {
			if !strings.HasSuffix(name, paramCodeSuffix) {
				continue
			}
			if want := js(p.(map[string]any)["Default"]); params[name] != want {
				t.Errorf("parameter %s: the StackSet passes %s, the member template's default is %s", name, params[name], want)
			}
		}
		if js(ss["OperationPreferences"]) != `{"FailureTolerancePercentage":0,"MaxConcurrentPercentage":25,"RegionConcurrencyType":"SEQUENTIAL","RegionOrder":["us-east-1","eu-west-1"]}` {
			t.Errorf("operation preferences %s", js(ss["OperationPreferences"]))
		}
	})

	t.Run("stacks deleted with an account that leaves, when configured", func(t *testing.T) {
		cfg := orgExample(t, func(c map[string]any) {
			o := c["organization"].(map[string]any)
			o["retainStacksOnAccountRemoval"] = false
			delete(o, "callAs")
		})
		_, ss := one(t, synthOrganization(t, cfg).templates[OrganizationStackName], "AWS::CloudFormation::StackSet")
		if js(ss["AutoDeployment"]) != `{"Enabled":true,"RetainStacksOnAccountRemoval":false}` || ss["CallAs"] != "SELF" {
			t.Errorf("auto deployment %s, call as %v", js(ss["AutoDeployment"]), ss["CallAs"])
		}
	})

	t.Run("central report bucket", func(t *testing.T) {
		bucketID, b := one(t, o, "AWS::S3::Bucket")
		if b["BucketName"] != org.ReportBucketName || js(b["VersioningConfiguration"]) != `{"Status":"Enabled"}` {
			t.Errorf("bucket %s: name %v, versioning %s", bucketID, b["BucketName"], js(b["VersioningConfiguration"]))
		}
		enc := js(b["BucketEncryption"])
		if !strings.Contains(enc, `"SSEAlgorithm":"aws:kms"`) || !strings.Contains(enc, "ReportKey") || !strings.Contains(enc, `"BucketKeyEnabled":true`) {
			t.Errorf("bucket encryption %s", enc)
		}
		if js(b["PublicAccessBlockConfiguration"]) != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` {
			t.Errorf("public access block %s", js(b["PublicAccessBlockConfiguration"]))
		}
		if !strings.Contains(js(b["LifecycleConfiguration"]), `"NoncurrentVersionExpiration":{"NoncurrentDays":90}`) {
			t.Errorf("lifecycle %s", js(b["LifecycleConfiguration"]))
		}
		if o["Resources"].(map[string]any)[bucketID].(map[string]any)["DeletionPolicy"] != "Retain" {
			t.Error("the central reports are deleted with the stack")
		}
		_, bp := one(t, o, "AWS::S3::BucketPolicy")
		doc := bp["PolicyDocument"]
		var allows int
		for _, st := range statementsIn(t, doc) {
			if st.Effect == "Allow" {
				allows++
			}
		}
		w := bySid(t, doc, "MembersWriteOwnReports")
		// ${aws:PrincipalAccount} in the resource part binds each member to
		// its own prefix (docs/IAM/latest/UserGuide/reference_policies_variables.md,
		// "Resource element": any single-valued key, after the fifth colon).
		if allows != 1 || w.Effect != "Allow" || js(w.Principal) != `{"AWS":"*"}` ||
			strings.Join(actionsOf(w), ",") != "s3:GetObject,s3:PutObject" ||
			!strings.HasSuffix(js(w.Resource), `:s3:::`+org.ReportBucketName+`/reports/${aws:PrincipalAccount}/*"]]}`) ||
			js(w.Condition) != `{"StringEquals":{"aws:PrincipalOrgID":"`+org.OrganizationID+`"}}` {
			t.Errorf("%d Allow statements; member writes %s", allows, js(w))
		}
		d := bySid(t, doc, "OnlyUnderTheCentralKey")
		if d.Effect != "Deny" || !strings.Contains(js(d.Condition), `"StringNotEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":{"Fn::GetAtt":["ReportKey`) {
			t.Errorf("key enforcement %s", js(d))
		}
		if !strings.Contains(js(doc), `"aws:SecureTransport":"false"`) {
			t.Error("the central bucket allows requests without TLS")
		}
	})

	t.Run("central report key", func(t *testing.T) {
		_, k := one(t, o, "AWS::KMS::Key")
		doc := k["KeyPolicy"]
		m := bySid(t, doc, "MembersEncryptReportsThroughS3")
		cond := js(m.Condition)
		if js(m.Principal) != `{"AWS":"*"}` || strings.Join(actionsOf(m), ",") != "kms:Encrypt,kms:GenerateDataKey" ||
			!strings.Contains(cond, `"aws:PrincipalOrgID":"`+org.OrganizationID+`"`) || !strings.Contains(cond, `"kms:ViaService":{"Fn::Join":["",["s3.",{"Ref":"AWS::Region"},".amazonaws.com"]]}`) ||
			!strings.Contains(cond, "kms:EncryptionContext:aws:s3:arn") {
			t.Errorf("members' key statement %s", js(m))
		}
		for _, st := range statementsIn(t, doc) {
			if js(st.Principal) == `{"AWS":"*"}` && st.Sid != m.Sid {
				t.Errorf("statement %s opens the key to everyone: %s", st.Sid, js(st))
			}
			for _, a := range actionsOf(st) {
				if a == "kms:*" || (st.Sid == m.Sid && a == "kms:Decrypt") {
					t.Errorf("statement %s grants %s", st.Sid, a)
				}
			}
		}
		if k["EnableKeyRotation"] != true {
			t.Error("central key without rotation")
		}
		checkPolicyInvariants(t, o)
	})

	t.Run("code buckets", func(t *testing.T) {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			c := s.templates[codeBucketStackPrefix+region]
			_, b := one(t, c, "AWS::S3::Bucket")
			if b["BucketName"] != org.CodeBucketPrefix+"-"+region {
				t.Errorf("code bucket %v in %s", b["BucketName"], region)
			}
			_, bp := one(t, c, "AWS::S3::BucketPolicy")
			r := bySid(t, bp["PolicyDocument"], "OrganizationReadsCode")
			if strings.Join(actionsOf(r), ",") != "s3:GetObject,s3:GetObjectVersion" || !strings.Contains(js(r.Resource), "/s3rekey/*") ||
				js(r.Condition) != `{"StringEquals":{"aws:PrincipalOrgID":"`+org.OrganizationID+`"}}` {
				t.Errorf("code bucket %s policy %s", region, js(r))
			}
			checkPolicyInvariants(t, c)
		}
	})
}

// TestOrganizationConfigErrorsNameTheField: the organization config is
// as strict as the rest, naming where each error is.
func TestOrganizationConfigErrorsNameTheField(t *testing.T) {
	set := func(field string, v any) func(map[string]any) {
		return func(c map[string]any) { c["organization"].(map[string]any)[field] = v }
	}
	cases := map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"unknown field":                    {set("organisationId", "o-a1b2c3d4e5"), `organization: unknown field "organisationId"`},
		"case variant":                     {set("OrganizationId", "o-a1b2c3d4e5"), `organization: unknown field "OrganizationId"`},
		"unknown target field":             {set("targets", map[string]any{"organizationalUnitIds": []string{"r-ab12"}, "regions": []string{"us-east-1"}, "accounts": []string{"1"}}), `organization.targets: unknown field "accounts"`},
		"organization id":                  {set("organizationId", "a1b2c3"), "organization.organizationId"},
		"central account":                  {set("centralAccount", "central"), "organization.centralAccount"},
		"central region":                   {set("centralRegion", "virginia"), "organization.centralRegion"},
		"view role":                        {set("viewRoleName", ""), "organization.viewRoleName"},
		"no OU":                            {set("targets", map[string]any{"organizationalUnitIds": []string{}, "regions": []string{"us-east-1"}}), "organization.targets.organizationalUnitIds"},
		"an account is not an OU":          {set("targets", map[string]any{"organizationalUnitIds": []string{"111122223333"}, "regions": []string{"us-east-1"}}), "organization.targets.organizationalUnitIds[0]"},
		"no region":                        {set("targets", map[string]any{"organizationalUnitIds": []string{"r-ab12"}, "regions": []string{}}), "organization.targets.regions"},
		"region twice":                     {set("targets", map[string]any{"organizationalUnitIds": []string{"r-ab12"}, "regions": []string{"us-east-1", "us-east-1"}}), "organization.targets.regions[1]"},
		"call as":                          {set("callAs", "ADMIN"), "organization.callAs"},
		"code bucket prefix":               {set("codeBucketPrefix", "Code_Bucket"), "organization.codeBucketPrefix"},
		"report bucket":                    {set("reportBucketName", "x"), "organization.reportBucketName"},
		"reader name with region too long": {set("readerRoleName", strings.Repeat("r", 60)), "organization.readerRoleName: \"" + strings.Repeat("r", 60) + "\" with the region"},
		"reader role":                      {set("readerRoleName", "a role"), "organization.readerRoleName"},
		"parameter name":                   {set("parameterName", "no-slash"), "organization.parameterName"},
		"failure tolerance":                {set("failureTolerancePercentage", 101), "organization.failureTolerancePercentage"},
		"concurrency":                      {set("maxConcurrentPercentage", 120), "organization.maxConcurrentPercentage"},
		"account id":                       {set("accounts", map[string]any{"payments": map[string]any{"kmsKeyArn": "alias/x"}}), "organization.accounts.payments"},
		"account key field":                {set("accounts", map[string]any{"111122223333": map[string]any{"kmsKey": "alias/x"}}), `organization.accounts.111122223333: unknown field "kmsKey"`},
		"account key not a key":            {set("accounts", map[string]any{"111122223333": map[string]any{"kmsKeyArn": "payments"}}), "organization.accounts.111122223333.kmsKeyArn"},
		"key of another account":           {set("accounts", map[string]any{"111122223333": map[string]any{"kmsKeyArn": "arn:aws:kms:us-east-1:444455556666:key/k"}}), "UpdateObjectEncryption takes only keys of the bucket owner's account"},
		"key ARN, several regions":         {set("accounts", map[string]any{"111122223333": map[string]any{"kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}), "name the account's key by an alias"},
		"own report prefix":                {func(c map[string]any) { c["jobs"] = map[string]any{"reports": map[string]any{"prefix": "mine"}} }, "jobs.reports"},
		"own report bucket": {func(c map[string]any) {
			c["jobs"] = map[string]any{"reports": map[string]any{"bucket": "mine", "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}
		}, "jobs.reports"},
		"a key created per member": {func(c map[string]any) {
			c["rules"].([]any)[1].(map[string]any)["settings"] = map[string]any{"kmsKeyArn": "create"}
		}, "rules.everything.kmsKeyArn"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := orgExampleMap(t)
			tc.edit(c)
			_, err := ParseConfig(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	many := map[string]any{}
	for i := range maxAccountAliases + 1 {
		many[strings.Repeat("1", 9)+threeDigits(i)] = map[string]any{"kmsKeyArn": "alias/team-" + threeDigits(i)}
	}
	c := orgExampleMap(t)
	c["organization"].(map[string]any)["accounts"] = many
	if _, err := ParseConfig(c); err == nil || !strings.Contains(err.Error(), "distinct aliases") {
		t.Errorf("%d per-account aliases: %v, want the limit named", len(many), err)
	}
}

func threeDigits(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}
