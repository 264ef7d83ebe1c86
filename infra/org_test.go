package main

import (
	"archive/zip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// orgExample is the organization example shipped beside cdk.json, as a
// map (for edits) and parsed.
func orgExample(t *testing.T, edit func(map[string]any)) *Config {
	t.Helper()
	c := orgExampleMap(t)
	if edit != nil {
		edit(c)
	}
	cfg, err := ParseConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func orgExampleMap(t *testing.T) map[string]any {
	t.Helper()
	return readJSON(t, "../organization.example.json")
}

// standIn are the stack's props with stand-in Lambda code.
func standIn(t *testing.T, cfg *Config) S3RekeyStackProps {
	t.Helper()
	code := t.TempDir()
	for _, fn := range []string{"encrypt", "planner", "enroll"} {
		if err := os.MkdirAll(filepath.Join(code, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(code, fn, "bootstrap"), []byte("stand-in for "+fn), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return S3RekeyStackProps{Config: cfg,
		EncryptCode: filepath.Join(code, "encrypt"), PlannerCode: filepath.Join(code, "planner"), EnrollCode: filepath.Join(code, "enroll")}
}

// orgSynth is what `make synth` runs for an organization config: the
// organization app, synthesized with no credentials in the environment,
// its templates read back from the cloud assembly by stack name, and
// what it published.
type orgSynth struct {
	templates map[string]map[string]any
	publish   string
}

func synthOrganization(t *testing.T, cfg *Config) orgSynth {
	t.Helper()
	for _, v := range []string{"CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	out := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	err := organizationApp(app, standIn(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	app.Synth(nil)
	files, _ := filepath.Glob(filepath.Join(out, "*.template.json"))
	s := orgSynth{templates: map[string]map[string]any{}, publish: PublishDir(app)}
	for _, f := range files {
		s.templates[strings.TrimSuffix(filepath.Base(f), ".template.json")] = readJSON(t, f)
	}
	return s
}

// roleDocument is the policy document of the role whose logical ID
// contains role.
func roleDocument(tmpl map[string]any, role string) any {
	for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
		if strings.Contains(js(p["Roles"]), role) {
			return p["PolicyDocument"]
		}
	}
	return nil
}

// readJSON reads a JSON object: a template, or the example config.
func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// one is the only resource of a type in a template.
func one(t *testing.T, tmpl map[string]any, typ string) (string, map[string]any) {
	t.Helper()
	rs := resourcesOf(tmpl, typ)
	if len(rs) != 1 {
		t.Fatalf("%d %s, want one", len(rs), typ)
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

type stmt struct {
	Sid       string
	Effect    string
	Principal any
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

func statementsIn(t *testing.T, doc any) []stmt {
	t.Helper()
	var d struct{ Statement []stmt }
	if err := json.Unmarshal([]byte(js(doc)), &d); err != nil {
		t.Fatal(err)
	}
	return d.Statement
}

func bySid(t *testing.T, doc any, sid string) stmt {
	t.Helper()
	for _, st := range statementsIn(t, doc) {
		if st.Sid == sid {
			return st
		}
	}
	t.Fatalf("no statement %s in %s", sid, js(doc))
	return stmt{}
}

func actionsOf(st stmt) []string {
	var out []string
	for _, a := range asList(st.Action) {
		out = append(out, a.(string))
	}
	slices.Sort(out)
	return out
}

// TestOrganizationSynthWithoutCredentials: the organization config
// synthesizes the organization stack, the member stack and a code bucket
// stack per region with no AWS credentials or account in the
// environment, and publishes the member template and its code.
func TestOrganizationSynthWithoutCredentials(t *testing.T) {
	s := synthOrganization(t, orgExample(t, nil))
	for _, name := range []string{OrganizationStackName, MemberStackName, codeBucketStackPrefix + "us-east-1", codeBucketStackPrefix + "eu-west-1"} {
		if s.templates[name] == nil {
			t.Errorf("no template %s among %v", name, keysOf(s.templates))
		}
	}
	if len(s.templates) != 4 {
		t.Errorf("templates %v, want the organization, member and two code bucket stacks", keysOf(s.templates))
	}
	published, _ := filepath.Glob(filepath.Join(s.publish, "s3rekey", "*"))
	var zips, templates int
	for _, p := range published {
		switch {
		case strings.HasSuffix(p, ".zip"):
			zips++
		case strings.HasSuffix(p, ".template.json"):
			templates++
		}
	}
	if zips != 4 || templates != 1 {
		t.Errorf("published %v, want the three functions' and the policy's zips and the member template", published)
	}
	// What the StackSet deploys is the member stack of the app, as
	// reviewed in cdk.out.
	for _, p := range published {
		if strings.HasSuffix(p, ".template.json") {
			if js(readJSON(t, p)) != js(s.templates[MemberStackName]) {
				t.Error("the published member template differs from the app's member stack")
			}
			if !strings.Contains(js(s.templates[OrganizationStackName]), filepath.Base(p)) {
				t.Errorf("the StackSet does not name the published %s", filepath.Base(p))
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMemberStack: the member template deploys into accounts that are not
// CDK-bootstrapped, finds its code in the region's code bucket, reports
// into the central bucket under its own prefix, publishes its deployment
// record and lets the organization view read it, and nothing more.
func TestMemberStack(t *testing.T) {
	cfg := orgExample(t, nil)
	s := synthOrganization(t, cfg)
	m := s.templates[MemberStackName]
	org := cfg.Organization

	t.Run("no CDK assets or bootstrap", func(t *testing.T) {
		raw := js(m)
		for _, unwanted := range []string{"cdk-hnb659fds", "BootstrapVersion", "AssetParameters", "aws:asset:path"} {
			if strings.Contains(raw, unwanted) {
				t.Errorf("the member template depends on CDK bootstrap or assets (%s)", unwanted)
			}
		}
		var functions int
		for id, f := range resourcesOf(m, "AWS::Lambda::Function") {
			if f["Handler"] != "bootstrap" {
				continue
			}
			functions++
			code := js(f["Code"])
			if !strings.Contains(code, `"`+org.CodeBucketPrefix+`"`) || !strings.Contains(code, `{"Ref":"AWS::Region"}`) || !strings.Contains(code, paramCodeSuffix) {
				t.Errorf("function %s's code %s is not the region's code bucket by parameter", id, code)
			}
		}
		if functions != 3 {
			t.Errorf("%d functions", functions)
		}
		_, layer := one(t, m, "AWS::Lambda::LayerVersion")
		if !strings.Contains(js(layer["Content"]), "Policy"+paramCodeSuffix) {
			t.Errorf("the policy layer's content %s", js(layer["Content"]))
		}
		params := m["Parameters"].(map[string]any)
		for _, name := range []string{ParamReportKeyArn, "Encrypt" + paramCodeSuffix, "Planner" + paramCodeSuffix, "Enroll" + paramCodeSuffix, "Policy" + paramCodeSuffix} {
			p, ok := params[name].(map[string]any)
			if !ok {
				t.Errorf("parameter %s missing: %v", name, keysOf(params))
				continue
			}
			if name == ParamReportKeyArn {
				continue
			}
			// The default is the published zip.
			if _, err := os.Stat(filepath.Join(s.publish, filepath.FromSlash(p["Default"].(string)))); err != nil {
				t.Errorf("parameter %s's default %v is not published: %v", name, p["Default"], err)
			}
		}
	})

	t.Run("reports into the central bucket, own prefix, central key and owner", func(t *testing.T) {
		for id, f := range resourcesOf(m, "AWS::Lambda::Function") {
			if f["Handler"] != "bootstrap" {
				continue
			}
			env := js(f["Environment"])
			for _, want := range []string{`"S3REKEY_REPORT_BUCKET":"` + org.ReportBucketName + `"`, `"S3REKEY_REPORT_BUCKET_OWNER":"` + org.CentralAccount + `"`,
				`"S3REKEY_REPORT_REGION":"` + org.CentralRegion + `"`, `"S3REKEY_REPORT_KMS_KEY_ARN":{"Ref":"` + ParamReportKeyArn + `"}`,
				`"S3REKEY_REPORT_PREFIX":{"Fn::Join":["",["reports/",{"Ref":"AWS::AccountId"},"/",{"Ref":"AWS::Region"}]]}`,
				`"S3REKEY_ACCOUNT_POLICIES":"` + accountPoliciesDir + `"`} {
				if !strings.Contains(env, want) {
					t.Errorf("function %s lacks %s: %s", id, want, env)
				}
			}
		}
		// No report bucket or key of the member's own.
		for _, b := range resourcesOf(m, "AWS::S3::Bucket") {
			if strings.Contains(js(b), "ReportKey") {
				t.Errorf("the member creates a report bucket: %s", js(b))
			}
		}
		if keys := resourcesOf(m, "AWS::KMS::Key"); len(keys) != 2 {
			t.Errorf("%d keys, want the logs and inventory keys only (no report key, no created target key)", len(keys))
		}
		enc := roleDocument(m, "EncryptServiceRole")
		write := bySid(t, enc, "WriteReports")
		if js(write.Resource) != `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":s3:::`+org.ReportBucketName+`/reports/",{"Ref":"AWS::AccountId"},"/",{"Ref":"AWS::Region"},"/*"]]}` {
			t.Errorf("report writes allowed on %s, want the account's own prefix of the central bucket", js(write.Resource))
		}
		key := bySid(t, enc, "ReportKey")
		if js(key.Resource) != `{"Ref":"`+ParamReportKeyArn+`"}` || js(key.Condition["StringEquals"]["kms:ViaService"]) != `["s3.`+org.CentralRegion+`.amazonaws.com"]` {
			t.Errorf("report key grant on %s through %s, want the central key through S3 of %s", js(key.Resource), js(key.Condition), org.CentralRegion)
		}
	})

	t.Run("the functions' roles hold the statements of internal/permissions", func(t *testing.T) {
		res := permissions.Resources{Partition: "aws", Region: "r", Account: "a", InventoryBucketARN: "i", WorkQueueARN: "w", WorkDLQARN: "wd",
			ControlQueueARN: "c", ControlDLQARN: "cd", UploadsQueueARN: "u", UploadsDLQARN: "ud", JobsTableARN: "t", ReportObjectsARN: "o", ReportKeyARN: "k", ReportRegion: org.CentralRegion}
		res.FromPolicy(cfg.Policy)
		_, aliases := org.accountKeys()
		res.TargetKeyAliases = append(res.TargetKeyAliases, aliases...)
		for role, want := range map[string][]permissions.Statement{"EncryptServiceRole": permissions.Encrypt(res),
			"PlannerServiceRole": permissions.Planner(res), "EnrollServiceRole": permissions.Enroll(res)} {
			doc := roleDocument(m, role)
			got := map[string][]string{}
			for _, st := range statementsIn(t, doc) {
				if st.Sid != "" {
					got[st.Sid] = actionsOf(st)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: statements %v, want the %d of internal/permissions", role, keysOf(got), len(want))
			}
			for _, st := range want {
				w := slices.Clone(st.Actions)
				slices.Sort(w)
				if !slices.Equal(got[st.Sid], w) {
					t.Errorf("%s: %s grants %v, want %v", role, st.Sid, got[st.Sid], w)
				}
			}
		}
	})

	t.Run("per-account target keys", func(t *testing.T) {
		// The layer's content is published; its account files are the
		// policy with every target replaced by the account's key.
		zips, _ := filepath.Glob(filepath.Join(s.publish, "s3rekey", "Policy-*.zip"))
		if len(zips) != 1 {
			t.Fatalf("policy zips %v", zips)
		}
		files := unzip(t, zips[0])
		for account, want := range map[string]string{"111122223333": "alias/payments-data", "444455556666": "alias/research-data"} {
			data, ok := files["s3rekey/accounts/"+account+".json"]
			if !ok {
				t.Fatalf("no policy for %s in the layer: %v", account, keysOf(files))
			}
			p, err := policy.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, target := range p.Targets() {
				if target.KMSKeyARN != want {
					t.Errorf("account %s's policy targets %s, want %s", account, target.KMSKeyARN, want)
				}
			}
		}
		if _, ok := files["s3rekey/policy.json"]; !ok {
			t.Error("no shared policy in the layer")
		}
		enc := js(roleDocument(m, "EncryptServiceRole"))
		for _, want := range []string{`"alias/research-data"`, `"alias/payments-data"`, `"alias/s3rekey-target"`} {
			if !strings.Contains(enc, want) {
				t.Errorf("encrypt's policy lacks %s: %s", want, enc)
			}
		}
	})

	t.Run("deployment record", func(t *testing.T) {
		_, p := one(t, m, "AWS::SSM::Parameter")
		if p["Name"] != deployment.DefaultParameterName || p["Type"] != "String" {
			t.Errorf("parameter %s", js(p))
		}
		// With every reference resolved to a stand-in, the value is a record
		// the organization view accepts.
		if _, err := deployment.Parse([]byte(resolveStandIns(p["Value"]))); err != nil {
			t.Errorf("the published record does not parse: %v (%s)", err, js(p["Value"]))
		}
		value := js(p["Value"])
		for _, want := range []string{`\"version\":1`, `\"jobsTable\":\"`, "JobsTable", "WorkQueue", "ControlDeadLetterQueue", `\"account\":\"`, "AWS::AccountId",
			`\"reportLocation\":\"s3://` + org.ReportBucketName} {
			if !strings.Contains(value, want) {
				t.Errorf("the record lacks %s: %s", want, value)
			}
		}
	})

	t.Run("the organization's reader role", func(t *testing.T) {
		var readerID string
		var reader map[string]any
		for id, r := range resourcesOf(m, "AWS::IAM::Role") {
			if r["RoleName"] != nil {
				if reader != nil {
					t.Errorf("two named roles: %s and %s", readerID, id)
				}
				readerID, reader = id, r
			}
		}
		// Named for its region: IAM roles are global, and the StackSet
		// deploys the member stack in every target region of an account.
		if reader == nil || js(reader["RoleName"]) != `{"Fn::Join":["",["`+deployment.DefaultReaderRoleName+`-",{"Ref":"AWS::Region"}]]}` {
			t.Fatalf("reader role named %s, want %s-REGION", js(reader["RoleName"]), deployment.DefaultReaderRoleName)
		}
		trust := statementsIn(t, reader["AssumeRolePolicyDocument"])
		if len(trust) != 1 {
			t.Fatalf("trust %s", js(trust))
		}
		tr := trust[0]
		viewRole := `":iam::` + org.CentralAccount + `:role/` + org.ViewRoleName + `"`
		if !strings.Contains(js(tr.Principal), ":iam::"+org.CentralAccount+":root") || js(tr.Action) != `"sts:AssumeRole"` ||
			js(tr.Condition["StringEquals"]["aws:PrincipalOrgID"]) != `"`+org.OrganizationID+`"` ||
			!strings.Contains(js(tr.Condition["ArnEquals"]["aws:PrincipalArn"]), viewRole) {
			t.Errorf("reader trust %s, want the central account's view role of the organization only", js(tr))
		}
		doc := roleDocument(m, readerID)
		got := map[string][]string{}
		for _, st := range statementsIn(t, doc) {
			got[st.Sid] = actionsOf(st)
			resource := js(st.Resource)
			for _, a := range actionsOf(st) {
				switch {
				case strings.HasPrefix(a, "dynamodb:"):
					if a != "dynamodb:Query" || !strings.Contains(resource, "JobsTable") {
						t.Errorf("reader may %s on %s", a, resource)
					}
				case strings.HasPrefix(a, "sqs:"):
					if a != "sqs:GetQueueAttributes" || !strings.Contains(resource, "Queue") {
						t.Errorf("reader may %s on %s", a, resource)
					}
				case strings.HasPrefix(a, "ssm:"):
					if a != "ssm:GetParameter" || !strings.Contains(resource, "DeploymentRecord") {
						t.Errorf("reader may %s on %s", a, resource)
					}
				case strings.HasPrefix(a, "s3:"):
					if !strings.HasPrefix(a, "s3:Get") && !strings.HasPrefix(a, "s3:List") {
						t.Errorf("reader may %s", a)
					}
				case a == "kms:Decrypt":
					if !strings.Contains(resource, "InventoryKey") || !strings.Contains(js(st.Condition), "kms:ViaService") {
						t.Errorf("reader decrypts %s (%s)", resource, js(st.Condition))
					}
				default:
					t.Errorf("reader may %s", a)
				}
			}
		}
		res := permissions.Resources{Partition: "aws", Region: "r", Account: "a", JobsTableARN: "t", InventoryBucketARN: "i"}
		for _, want := range permissions.Reader(res, permissions.View{DeploymentParameterARN: "p", QueueARNs: []string{"q"}, InventoryKeyARN: "k"}) {
			w := slices.Clone(want.Actions)
			slices.Sort(w)
			if !slices.Equal(got[want.Sid], w) {
				t.Errorf("reader statement %s grants %v, want %v", want.Sid, got[want.Sid], w)
			}
		}
		if len(got) != 8 {
			t.Errorf("reader statements %v, want the 8 of permissions.Reader", got)
		}
		queues := bySid(t, doc, "QueueDepths")
		if n := len(asList(queues.Resource)); n != len(resourcesOf(m, "AWS::SQS::Queue")) {
			t.Errorf("the reader sees %d queues of %d", n, len(resourcesOf(m, "AWS::SQS::Queue")))
		}
	})

	t.Run("security invariants and limits", func(t *testing.T) {
		checkPolicyInvariants(t, m)
		raw, _ := json.Marshal(m)
		// A StackSet's template URL may point at up to 1 MB; 500 resources
		// per stack (docs/AWSCloudFormation/latest/UserGuide/cloudformation-limits.md).
		if len(raw) >= 1<<20 || len(m["Resources"].(map[string]any)) > 500 {
			t.Errorf("member template %d bytes, %d resources", len(raw), len(m["Resources"].(map[string]any)))
		}
	})
}

// resolveStandIns renders a template value as a string, every Fn::Join
// joined and every other intrinsic (Ref, Fn::GetAtt) replaced by "x".
func resolveStandIns(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if join, ok := v["Fn::Join"].([]any); ok {
			var parts []string
			for _, part := range join[1].([]any) {
				parts = append(parts, resolveStandIns(part))
			}
			return strings.Join(parts, join[0].(string))
		}
	}
	return "x"
}

// unzip reads a published zip: file name → content.
func unzip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = data
	}
	return out
}
