package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func TestMain(m *testing.M) {
	os.Setenv("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// exampleConfig is the configuration shipped in cdk.json: the test proves
// the documented example is what the code reads.
func exampleConfig(t *testing.T) *Config {
	t.Helper()
	data, err := os.ReadFile("../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(doc.Context[ContextKey])
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// synth builds the stack with stand-in Lambda code and returns its
// template as JSON and as an assertions.Template.
func synth(t *testing.T, cfg *Config) (map[string]any, assertions.Template) {
	tmpl, at, _ := synthStack(t, cfg)
	return tmpl, at
}

func synthStack(t *testing.T, cfg *Config) (map[string]any, assertions.Template, *S3RekeyStack) {
	t.Helper()
	props := standIn(t, cfg)
	app := awscdk.NewApp(nil)
	stack := NewS3RekeyStack(app, "Test", &props)
	t.Cleanup(func() { os.RemoveAll(stack.policyDir) })
	tmpl := assertions.Template_FromStack(stack.Stack, nil)
	raw, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out, tmpl, stack
}

func resourcesOf(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			props, _ := res["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestS3RekeyStack checks every resource the deploy issue asks for, then
// the security invariants over the whole template.
func TestS3RekeyStack(t *testing.T) {
	cfg := exampleConfig(t)
	tmpl, at, stack := synthStack(t, cfg)
	r := func(typ string) map[string]map[string]any { return resourcesOf(tmpl, typ) }

	t.Run("queues", func(t *testing.T) {
		queues := r("AWS::SQS::Queue")
		if len(queues) != 7 {
			t.Fatalf("%d queues, want work, uploads, control and their DLQs, and the enroll DLQ", len(queues))
		}
		var dlqs, redriven int
		visibilities := map[float64]bool{}
		for id, q := range queues {
			if q["SqsManagedSseEnabled"] != true {
				t.Errorf("queue %s is not encrypted", id)
			}
			if q["QueueName"] != nil {
				t.Errorf("queue %s has a hard-coded name", id)
			}
			if rp, ok := q["RedrivePolicy"].(map[string]any); ok {
				redriven++
				if rp["maxReceiveCount"].(float64) < 5 {
					t.Errorf("queue %s redrives after %v receives", id, rp["maxReceiveCount"])
				}
				visibilities[q["VisibilityTimeout"].(float64)] = true
			} else if q["MessageRetentionPeriod"] == 1209600.0 {
				dlqs++
			}
		}
		if dlqs != 4 || redriven != 3 {
			t.Errorf("%d DLQs with 14-day retention and %d queues with a redrive policy, want 4 (work, uploads, control, enroll) and 3", dlqs, redriven)
		}
		// 6 × the function timeout + the batching window.
		if !visibilities[6*300+1] || !visibilities[6*900] {
			t.Errorf("visibility timeouts %v, want 1801 (encrypt) and 5400 (planner)", visibilities)
		}
	})

	t.Run("functions", func(t *testing.T) {
		fns := map[string]map[string]any{}
		for id, f := range r("AWS::Lambda::Function") {
			if f["Handler"] == "bootstrap" {
				fns[id] = f
			}
		}
		if len(fns) != 3 {
			t.Fatalf("%d s3rekey functions, want encrypt, planner and enroll", len(fns))
		}
		for id, f := range fns {
			if f["Runtime"] != "provided.al2023" || js(f["Architectures"]) != `["arm64"]` || js(f["LoggingConfig"]) == "" ||
				!strings.Contains(js(f["LoggingConfig"]), `"LogFormat":"JSON"`) || f["FunctionName"] != nil {
				t.Errorf("function %s: runtime %v, arch %v, logging %v, name %v", id, f["Runtime"], f["Architectures"], f["LoggingConfig"], f["FunctionName"])
			}
			env := js(f["Environment"])
			for _, v := range []string{`"S3REKEY_POLICY_FILE":"/opt/s3rekey/policy.json"`, "S3REKEY_EXCLUDE_BUCKETS", "InventoryBucket", "ReportBucket"} {
				if !strings.Contains(env, v) {
					t.Errorf("function %s lacks %s", id, v)
				}
			}
		}
		at.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Handler": "bootstrap", "MemorySize": 1769, "Timeout": 300,
			"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{"S3REKEY_MAX_ATTEMPTS": "8", "S3REKEY_CONCURRENCY": "256", "S3REKEY_HEAD_BEFORE_UPDATE": "false"})},
		})
		at.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{"Handler": "bootstrap", "Timeout": 900, "EphemeralStorage": map[string]any{"Size": 10240}})
		for id, lg := range r("AWS::Logs::LogGroup") {
			if lg["RetentionInDays"] != 30.0 {
				t.Errorf("log group %s retention %v", id, lg["RetentionInDays"])
			}
		}
	})

	t.Run("the policy the functions read", func(t *testing.T) {
		// Every function mounts the one policy layer: the policy is a file,
		// not an environment variable, and the template holds only its
		// asset's hash.
		layers := r("AWS::Lambda::LayerVersion")
		if len(layers) != 1 {
			t.Fatalf("%d layers, want the policy layer", len(layers))
		}
		for id, f := range r("AWS::Lambda::Function") {
			if f["Handler"] == "bootstrap" && !strings.Contains(js(f["Layers"]), "Policy") {
				t.Errorf("function %s does not mount the policy layer: %s", id, js(f["Layers"]))
			}
			if strings.Contains(js(f["Environment"]), "S3REKEY_POLICY\"") || strings.Contains(js(f["Environment"]), "kmsKeyArn") {
				t.Errorf("function %s carries the policy in its environment", id)
			}
		}
		// The layer's file is a policy the functions accept, with the
		// created key named by its alias.
		p, err := loadLayerPolicy(stack)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := p.Lookup("example-archive"); b.KMSKeyARN != "alias/s3rekey/buckets-example-archive" || b.Versions != "all" {
			t.Errorf("the layer's policy %+v", b)
		}
		// The budgets of cdk.json reach the functions.
		if b, _ := p.Lookup("example-archive"); b.MaxObjectsPerSecond != cfg.Policy.Buckets["example-archive"].MaxObjectsPerSecond ||
			b.MaxObjectsPerSecond == 0 || p.MaxKMSRequestsPerSecond != cfg.Policy.MaxKMSRequestsPerSecond || p.MaxKMSRequestsPerSecond == 0 {
			t.Errorf("rendered budgets %v objects/s, %v KMS requests/s; cdk.json has %v and %v", b.MaxObjectsPerSecond, p.MaxKMSRequestsPerSecond,
				cfg.Policy.Buckets["example-archive"].MaxObjectsPerSecond, cfg.Policy.MaxKMSRequestsPerSecond)
		}
		aliases := js(r("AWS::KMS::Alias"))
		if !strings.Contains(aliases, "alias/s3rekey/buckets-example-archive") || !strings.Contains(aliases, "TargetKey0") {
			t.Errorf("the created key has no alias the policy names: %s", aliases)
		}
	})

	t.Run("event sources", func(t *testing.T) {
		esms := r("AWS::Lambda::EventSourceMapping")
		if len(esms) != 3 {
			t.Fatalf("%d event source mappings, want work and uploads (encrypt) and control (planner)", len(esms))
		}
		// The encrypt function has a mapping on each of its queues, so
		// that uploads are polled whatever the work queue holds.
		var encryptSources []string
		for _, m := range esms {
			if strings.Contains(js(m["FunctionName"]), "Encrypt") {
				encryptSources = append(encryptSources, js(m["EventSourceArn"]))
			}
		}
		slices.Sort(encryptSources)
		if len(encryptSources) != 2 || !strings.Contains(encryptSources[0], "UploadsQueue") || !strings.Contains(encryptSources[1], "WorkQueue") {
			t.Errorf("encrypt's mappings are on %v, want the uploads and the work queue", encryptSources)
		}
		for id, m := range esms {
			if js(m["FunctionResponseTypes"]) != `["ReportBatchItemFailures"]` || m["ScalingConfig"] == nil || m["BatchSize"] == nil {
				t.Errorf("mapping %s: %v", id, js(m))
			}
			// Upload events are one object each: the uploads queue's mapping
			// takes batches of encrypt.uploadsBatchSize (100), which above 10
			// needs a window of at least 1 s (Lambda, services-sqs-configure);
			// the work queue's, the backfill's, keeps encrypt.batchSize.
			want := map[string]string{"UploadsQueue": "100", "WorkQueue": "10"}
			for queue, size := range want {
				if strings.Contains(js(m["EventSourceArn"]), queue) && (js(m["BatchSize"]) != size || js(m["MaximumBatchingWindowInSeconds"]) != "1") {
					t.Errorf("the %s mapping batches %s messages in %s s, want %s in 1 s", queue, js(m["BatchSize"]), js(m["MaximumBatchingWindowInSeconds"]), size)
				}
			}
		}
		at.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
			"BatchSize": 10, "MaximumBatchingWindowInSeconds": 1, "ScalingConfig": map[string]any{"MaximumConcurrency": 50}})
		at.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
			"BatchSize": 1, "ScalingConfig": map[string]any{"MaximumConcurrency": 5}})
	})

	t.Run("EventBridge", func(t *testing.T) {
		rules := r("AWS::Events::Rule")
		var uploads, manifests, bucketEvents, sweeps, aliasWatches int
		for id, rule := range rules {
			pattern := js(rule["EventPattern"])
			target := js(rule["Targets"])
			switch {
			case strings.Contains(pattern, `"aws.kms"`):
				// The watch on the target aliases (aliaswatch.go): no target,
				// an alarm on its matches; TestKeySafety checks it.
				aliasWatches++
				if rule["Targets"] != nil {
					t.Errorf("alias watch rule %s has targets %s", id, target)
				}
			case strings.Contains(pattern, "manifest.checksum"):
				manifests++
				if !strings.Contains(target, "ControlQueue") || !strings.Contains(pattern, `"suffix":"manifest.checksum"`) {
					t.Errorf("inventory rule %s: %s → %s", id, pattern, target)
				}
			case strings.Contains(pattern, `"Object Created"`):
				uploads++
				// One rule for every bucket: s3rekey's own buckets left out;
				// to the uploads queue, undeliverable events to its DLQ.
				if !strings.Contains(target, "UploadsQueue") || strings.Contains(target, "WorkQueue") ||
					!strings.Contains(target, "UploadsDeadLetterQueue") || !strings.Contains(pattern, "anything-but") ||
					!strings.Contains(pattern, "InventoryBucket") || !strings.Contains(pattern, "ReportBucket") {
					t.Errorf("upload rule %s: %s → %s", id, pattern, target)
				}
			case strings.Contains(pattern, "AWS API Call via CloudTrail"):
				bucketEvents++
				for _, want := range []string{`"CreateBucket"`, `"PutBucketTagging"`, `"DeleteBucketTagging"`, `"s3.amazonaws.com"`} {
					if !strings.Contains(pattern, want) {
						t.Errorf("bucket events rule %s lacks %s: %s", id, want, pattern)
					}
				}
				if !strings.Contains(target, "Enroll") {
					t.Errorf("bucket events rule %s targets %s", id, target)
				}
			case rule["ScheduleExpression"] == "rate(1 hour)":
				sweeps++
				if !strings.Contains(target, "Enroll") {
					t.Errorf("sweep rule %s targets %s", id, target)
				}
			}
		}
		if uploads != 1 || manifests != 1 || bucketEvents != 1 || sweeps != 1 || aliasWatches != 1 || len(rules) != 5 {
			t.Errorf("%d upload, %d inventory, %d bucket-event, %d sweep and %d alias-watch rules of %d, want one each (the example's created key is named by alias)",
				uploads, manifests, bucketEvents, sweeps, aliasWatches, len(rules))
		}
		notifications := r("Custom::S3BucketNotifications")
		if len(notifications) != 1 || !strings.Contains(js(notifications), "InventoryBucket") {
			t.Errorf("%d bucket notification resources, want the inventory bucket's only (enrollment turns on the others'): %s", len(notifications), js(notifications))
		}
		for id, n := range notifications {
			if !strings.Contains(js(n["NotificationConfiguration"]), "EventBridgeConfiguration") {
				t.Errorf("%s: %s", id, js(n))
			}
		}
		// EventBridge may send to the queues, and only from the rules.
		for id, qp := range r("AWS::SQS::QueuePolicy") {
			doc := js(qp["PolicyDocument"])
			if strings.Contains(doc, "events.amazonaws.com") && !strings.Contains(doc, "aws:SourceArn") {
				t.Errorf("queue policy %s lets EventBridge send without a source condition", id)
			}
		}
	})

	t.Run("bucket settings", func(t *testing.T) {
		// No resource per bucket: the enroll function sets buckets up.
		if crs := r("Custom::AWS"); len(crs) != 0 {
			t.Errorf("%d custom resources set buckets up; the enroll function does", len(crs))
		}
		var enroll string
		for _, p := range r("AWS::IAM::Policy") {
			if strings.Contains(js(p["Roles"]), "EnrollServiceRole") {
				enroll = js(p["PolicyDocument"])
			}
		}
		for _, want := range []string{"s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration", "s3:PutInventoryConfiguration",
			"s3:PutBucketNotification", "s3:GetBucketNotification", "s3:ListAllMyBuckets", ":s3:::example-archive"} {
			if !strings.Contains(enroll, want) {
				t.Errorf("the enroll role lacks %s: %s", want, enroll)
			}
		}
		for _, unwanted := range []string{"s3:PutObject", "s3:GetObject", "s3:UpdateObjectEncryption", "dynamodb:"} {
			if strings.Contains(enroll, unwanted) {
				t.Errorf("the enroll role has %s", unwanted)
			}
		}
		// SQS: only SendMessage, only to the control queue (a new bucket's
		// backfill), whose URL is in the function's environment.
		var doc struct{ Statement []map[string]any }
		if err := json.Unmarshal([]byte(enroll), &doc); err != nil {
			t.Fatal(err)
		}
		sends := 0
		for _, st := range doc.Statement {
			if a := js(st["Action"]); strings.Contains(a, "sqs:") {
				sends++
				if a != `"sqs:SendMessage"` || !strings.Contains(js(st["Resource"]), "ControlQueue") || strings.Contains(js(st["Resource"]), "DeadLetter") ||
					strings.Contains(js(st["Resource"]), "WorkQueue") {
					t.Errorf("the enroll role's SQS statement %s, want SendMessage on the control queue only", js(st))
				}
			}
		}
		if sends != 1 {
			t.Errorf("the enroll role has %d SQS statements, want the control queue's SendMessage", sends)
		}
		for id, fn := range r("AWS::Lambda::Function") {
			if strings.HasPrefix(id, "Enroll") {
				env := js(fn["Environment"])
				if !strings.Contains(env, `"S3REKEY_CONTROL_QUEUE_URL":{"Ref":"ControlQueue`) {
					t.Errorf("the enroll function's environment %s lacks the control queue's URL", env)
				}
			}
		}
		bp := js(r("AWS::S3::BucketPolicy"))
		if !strings.Contains(bp, "s3.amazonaws.com") || !strings.Contains(bp, "aws:SourceAccount") || !strings.Contains(bp, "aws:SourceArn") {
			t.Errorf("inventory bucket policy %s", bp)
		}
		keys := r("AWS::KMS::Key")
		target := 0
		for _, k := range keys {
			if strings.HasPrefix(fmt.Sprint(k["Description"]), "s3rekey target key") {
				target++
			}
		}
		if target != 1 || len(keys) != 4 {
			t.Errorf("%d created target keys of %d keys, want the one configured as create, the report, inventory and logs keys", target, len(keys))
		}
		for _, k := range keys {
			if k["EnableKeyRotation"] != true {
				t.Error("created key without rotation")
			}
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		roles := r("AWS::IAM::Role")
		policies := r("AWS::IAM::Policy")
		statementsOf := func(prefix string) string {
			for id, p := range policies {
				for _, role := range asList(p["Roles"]) {
					if strings.Contains(js(role), prefix) {
						return js(p["PolicyDocument"])
					}
				}
				_ = id
			}
			return ""
		}
		enc := statementsOf("EncryptServiceRole")
		for _, want := range []string{"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:UpdateObjectEncryption", ":s3:::example-archive/*",
			"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "0987dcba", "WorkDeadLetterQueue", "sqs:SendMessage"} {
			if !strings.Contains(enc, want) {
				t.Errorf("encrypt's policy lacks %s: %s", want, enc)
			}
		}
		for _, unwanted := range []string{"ControlQueue", "s3:DeleteObject", "s3:PutObjectAcl"} {
			if strings.Contains(enc, unwanted) {
				t.Errorf("encrypt's policy has %s", unwanted)
			}
		}
		plan := statementsOf("PlannerServiceRole")
		for _, want := range []string{"s3:ListBucket", "s3:ListBucketVersions", "InventoryBucket", "ControlDeadLetterQueue", "WorkQueue"} {
			if !strings.Contains(plan, want) {
				t.Errorf("planner's policy lacks %s: %s", want, plan)
			}
		}
		for _, unwanted := range []string{"s3:UpdateObjectEncryption", "kms:", "s3:PutObject"} {
			if strings.Contains(plan, unwanted) {
				t.Errorf("planner's policy has %s", unwanted)
			}
		}
		if len(roles) < 2 {
			t.Errorf("%d roles", len(roles))
		}
		// The roles hold exactly the statements of internal/permissions,
		// the source the end-to-end tests bind in the emulator, plus what
		// CDK's SQS event source adds for Lambda's poller.
		res := permissions.Resources{Partition: "aws", Region: "r", Account: "a", ManagedBuckets: []string{"b"}, TargetKeyARNs: []string{"k"},
			TargetKeyAliases: []string{"alias/s3rekey/buckets-example-archive"}, CopyBuckets: []string{"example-archive"}, JobsTableARN: "t", ReportObjectsARN: "o", ReportKeyARN: "k",
			ExcludedObjects: []string{"example-customer-uploads/logs/*"}, UploadsQueueARN: "u", UploadsDLQARN: "ud", ControlQueueARN: "c"}
		for role, want := range map[string][]permissions.Statement{"EncryptServiceRole": permissions.Encrypt(res), "PlannerServiceRole": permissions.Planner(res),
			"EnrollServiceRole": permissions.Enroll(res)} {
			var doc struct {
				Statement []struct {
					Sid    string
					Action any
				}
			}
			if err := json.Unmarshal([]byte(statementsOf(role)), &doc); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, st := range doc.Statement {
				if st.Sid != "" {
					got[st.Sid] = js(st.Action)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d statements with a Sid, want the %d of internal/permissions: %v", role, len(got), len(want), got)
			}
			for _, st := range want {
				a := js(st.Actions)
				if len(st.Actions) == 1 {
					a = js(st.Actions[0])
				}
				if got[st.Sid] != a {
					t.Errorf("%s: statement %s grants %s, want %s", role, st.Sid, got[st.Sid], a)
				}
			}
		}
		if !strings.Contains(enc, "kms:ViaService") {
			t.Errorf("encrypt's KMS grants are not limited to calls through S3: %s", enc)
		}
		// Copy permissions only on the bucket that opted in.
		var doc struct {
			Statement []struct {
				Sid      string
				Resource any
			}
		}
		_ = json.Unmarshal([]byte(enc), &doc)
		for _, st := range doc.Statement {
			if strings.HasPrefix(st.Sid, "Copy") && (!strings.Contains(js(st.Resource), "example-archive") || strings.Contains(js(st.Resource), "example-customer-uploads")) {
				t.Errorf("statement %s applies to %s, want only the opted-in example-archive", st.Sid, js(st.Resource))
			}
		}
	})

	t.Run("without sourceKeyArns, any key of the account through S3", func(t *testing.T) {
		cfg := exampleConfig(t)
		cfg.SourceKeyArns = nil
		tmpl, _ := synth(t, cfg)
		var enc string
		for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
			if strings.Contains(js(p["Roles"]), "EncryptServiceRole") {
				enc = js(p["PolicyDocument"])
			}
		}
		for _, want := range []string{`"Sid":"SourceKeys"`, ":key/*", "kms:ViaService", "kms:CallerAccount"} {
			if !strings.Contains(enc, want) {
				t.Errorf("encrypt's policy lacks %s: %s", want, enc)
			}
		}
	})

	t.Run("a key named by alias is granted through kms:ResourceAliases", func(t *testing.T) {
		cfg := configWith(t, func(c map[string]any) {
			uploads := c["buckets"].(map[string]any)["example-customer-uploads"].(map[string]any)
			uploads["kmsKeyArn"] = "arn:aws:kms:us-east-1:111122223333:alias/app-data"
		})
		tmpl, _ := synth(t, cfg)
		var enc string
		for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
			if strings.Contains(js(p["Roles"]), "EncryptServiceRole") {
				enc = js(p["PolicyDocument"])
			}
		}
		for _, want := range []string{`"Sid":"TargetKeysByAlias"`, `"Sid":"ResolveAliases"`, "kms:DescribeKey", "kms:ResourceAliases", `"alias/app-data"`} {
			if !strings.Contains(enc, want) {
				t.Errorf("encrypt's policy lacks %s: %s", want, enc)
			}
		}
		if strings.Contains(enc, ":alias/app-data") {
			t.Errorf("an alias ARN as a resource grants nothing on the key: %s", enc)
		}
	})

	t.Run("EventBridge targets keep undeliverable events", func(t *testing.T) {
		for id, rule := range r("AWS::Events::Rule") {
			for _, target := range asList(rule["Targets"]) {
				tm, _ := target.(map[string]any)
				if tm == nil {
					continue // a rule with no target (the alias watch)
				}
				if tm["DeadLetterConfig"] == nil || tm["RetryPolicy"] == nil {
					t.Errorf("rule %s target %s has no dead-letter queue or retry policy", id, js(target))
				}
			}
		}
	})

	t.Run("alarms, dashboard and outputs", func(t *testing.T) {
		alarms := r("AWS::CloudWatch::Alarm")
		var dlq, age int
		for _, a := range alarms {
			switch a["MetricName"] {
			case "ApproximateNumberOfMessagesVisible":
				dlq++
			case "ApproximateAgeOfOldestMessage":
				age++
			}
		}
		if dlq != 4 || age != 2 {
			t.Errorf("%d DLQ alarms and %d age alarms, want 4 (work, uploads, control, enroll) and 2 (uploads, control)", dlq, age)
		}
		dash := js(r("AWS::CloudWatch::Dashboard"))
		if !strings.Contains(dash, `\"s3rekey\",\"Objects\",\"Outcome\",\"updated\"`) {
			t.Errorf("dashboard lacks the outcome metrics: %.400s", dash)
		}
		outputs := js(tmpl["Outputs"])
		for _, o := range []string{"WorkQueueUrl", "WorkDeadLetterQueueUrl", "UploadsQueueUrl", "UploadsDeadLetterQueueUrl", "EnrollDeadLetterQueueUrl", "EnrollFunctionName", "ControlQueueUrl", "ControlDeadLetterQueueUrl", "EncryptFunctionName", "PlannerFunctionName", "InventoryBucketName",
			"JobsTableName", "ReportLocation"} {
			if !strings.Contains(outputs, o) {
				t.Errorf("output %s missing", o)
			}
		}
	})

	t.Run("job records and reports", func(t *testing.T) {
		tables := r("AWS::DynamoDB::Table")
		if len(tables) != 1 {
			t.Fatalf("%d tables, want the jobs table", len(tables))
		}
		var tableID string
		for id, tb := range tables {
			tableID = id
			if tb["BillingMode"] != "PAY_PER_REQUEST" || tb["TableName"] != nil {
				t.Errorf("jobs table is not on demand, or has a hard-coded name: %s", js(tb))
			}
			if sse, _ := tb["SSESpecification"].(map[string]any); sse["SSEEnabled"] != true {
				t.Errorf("jobs table is not encrypted: %s", js(tb["SSESpecification"]))
			}
			if pitr, _ := tb["PointInTimeRecoverySpecification"].(map[string]any); pitr["PointInTimeRecoveryEnabled"] != true {
				t.Errorf("jobs table has no point-in-time recovery: %s", js(tb["PointInTimeRecoverySpecification"]))
			}
			if ttl, _ := tb["TimeToLiveSpecification"].(map[string]any); ttl["AttributeName"] != "expires" || ttl["Enabled"] != true {
				t.Errorf("jobs table's TTL: %s", js(tb["TimeToLiveSpecification"]))
			}
		}
		if res := tmpl["Resources"].(map[string]any)[tableID].(map[string]any); res["DeletionPolicy"] != "Retain" {
			t.Errorf("jobs table is deleted with the stack (%v): job records are audit evidence", res["DeletionPolicy"])
		}
		var reportBucket string
		for id, b := range r("AWS::S3::Bucket") {
			enc := js(b["BucketEncryption"])
			if strings.HasPrefix(id, "ReportBucket") {
				reportBucket = id
				if !strings.Contains(enc, "ReportKey") || !strings.Contains(enc, `"BucketKeyEnabled":true`) {
					t.Errorf("report bucket not under the report key with a bucket key: %s", enc)
				}
				if !strings.Contains(js(b["PublicAccessBlockConfiguration"]), `"BlockPublicPolicy":true`) {
					t.Errorf("report bucket does not block public access")
				}
			}
		}
		if reportBucket == "" {
			t.Fatal("no report bucket encrypted with SSE-KMS")
		}
		for id, f := range r("AWS::Lambda::Function") {
			if !strings.HasPrefix(fmt.Sprint(f["Description"]), "s3rekey ") {
				continue // CDK's own custom-resource handlers
			}
			env := js(f["Environment"])
			for _, v := range []string{"S3REKEY_JOBS_TABLE", tableID, "S3REKEY_REPORT_BUCKET", reportBucket, "S3REKEY_REPORT_KMS_KEY_ARN", "S3REKEY_REPORT_PREFIX", "s3rekey-reports",
				`"S3REKEY_JOBS_COUNT_UPLOADS":"true"`, `"S3REKEY_JOBS_RETENTION_DAYS":"90"`} {
				if !strings.Contains(env, v) {
					t.Errorf("function %s's environment lacks %s", id, v)
				}
			}
		}
		for _, f := range r("AWS::Lambda::Function") {
			if f["Description"] == "s3rekey Planner" && !strings.Contains(js(f["Environment"]), `"S3REKEY_LISTING_RANGES":"8"`) {
				t.Errorf("planner's environment lacks the listing ranges: %s", js(f["Environment"]))
			}
		}
		// Least privilege: item actions on the jobs table only; report
		// objects under the prefix only; the report key through S3 only.
		policies := r("AWS::IAM::Policy")
		for _, p := range policies {
			var doc struct {
				Statement []struct {
					Sid       string
					Action    any
					Resource  any
					Condition any
				}
			}
			_ = json.Unmarshal([]byte(js(p["PolicyDocument"])), &doc)
			role := js(p["Roles"])
			for _, st := range doc.Statement {
				actions, resource := js(st.Action), js(st.Resource)
				switch {
				case strings.Contains(actions, "dynamodb:") && !strings.Contains(actions, "DescribeStream"):
					if !strings.Contains(resource, tableID) || strings.Contains(actions, "Scan") || strings.Contains(actions, "DeleteItem") {
						t.Errorf("%s: %s grants %s on %s", role, st.Sid, actions, resource)
					}
					// Query reads a job's record, to drop the control messages
					// of a failed or cancelled job.
					if strings.Contains(role, "Planner") && actions != `["dynamodb:UpdateItem","dynamodb:PutItem","dynamodb:Query"]` {
						t.Errorf("planner may %s on the jobs table, want UpdateItem, PutItem and Query only", actions)
					}
				case st.Sid == "WriteReports":
					if !strings.Contains(resource, reportBucket) || !strings.Contains(resource, "/s3rekey-reports/*") {
						t.Errorf("report writes allowed on %s, want the report prefix only", resource)
					}
				case st.Sid == "ReportKey":
					if !strings.Contains(resource, "ReportKey") || !strings.Contains(js(st.Condition), "kms:ViaService") {
						t.Errorf("report key grant %s on %s (%s)", actions, resource, js(st.Condition))
					}
				}
			}
		}
	})

	t.Run("security invariants", func(t *testing.T) {
		checkPolicyInvariants(t, tmpl)
		for id, q := range r("AWS::SQS::Queue") {
			if q["SqsManagedSseEnabled"] != true && q["KmsMasterKeyId"] == nil {
				t.Errorf("queue %s is not encrypted", id)
			}
			tlsOnly := false
			for _, qp := range r("AWS::SQS::QueuePolicy") {
				if strings.Contains(js(qp["Queues"]), id) && strings.Contains(js(qp["PolicyDocument"]), `"aws:SecureTransport":"false"`) {
					tlsOnly = true
				}
			}
			if !tlsOnly {
				t.Errorf("queue %s has no TLS-only policy", id)
			}
		}
	})
}

// loadLayerPolicy reads the policy file of the stack's policy layer.
func loadLayerPolicy(stack *S3RekeyStack) (*policy.Policy, error) {
	return policy.Load(filepath.Join(stack.policyDir, "s3rekey", "policy.json"))
}

// configWith is cdk.json's example configuration with edit applied.
func configWith(t *testing.T, edit func(map[string]any)) *Config {
	t.Helper()
	data, err := os.ReadFile("../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context map[string]map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Context[ContextKey]
	edit(c)
	cfg, err := ParseConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkPolicyInvariants: no Allow statement anywhere grants "*" or a
// whole service ("svc:*"), and none applies to resource "*". Deny
// statements may (the TLS-only policies deny every action).
func checkPolicyInvariants(t *testing.T, tmpl map[string]any) {
	t.Helper()
	for id, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		var docs []any
		switch res["Type"] {
		case "AWS::IAM::Policy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::IAM::ManagedPolicy":
			docs = append(docs, props["PolicyDocument"])
		case "AWS::IAM::Role":
			for _, p := range asList(props["Policies"]) {
				if pm, ok := p.(map[string]any); ok {
					docs = append(docs, pm["PolicyDocument"])
				}
			}
		}
		for _, d := range docs {
			doc, ok := d.(map[string]any)
			if !ok {
				continue
			}
			for _, s := range asList(doc["Statement"]) {
				st := s.(map[string]any)
				if st["Effect"] != "Allow" {
					continue
				}
				for _, a := range asList(st["Action"]) {
					if as, ok := a.(string); ok && (as == "*" || strings.HasSuffix(as, ":*")) {
						t.Errorf("%s allows action %s", id, as)
					}
				}
				for _, rs := range asList(st["Resource"]) {
					// ListBuckets needs s3:ListAllMyBuckets, an action on no
					// bucket: IAM grants it on "*" only
					// (docs/AmazonS3/latest/API/API_ListBuckets.md).
					if rs == "*" && js(st["Action"]) != `"s3:ListAllMyBuckets"` {
						t.Errorf("%s allows %v on resource *", id, st["Action"])
					}
				}
			}
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	key := "arn:aws:kms:us-east-1:111122223333:key/k"
	cases := map[string]struct{ json, want string }{
		"missing":             {"", "is missing"},
		"no buckets":          {`{"buckets":{}}`, "buckets"},
		"bare key id as key":  {`{"buckets":{"b1b":{"kmsKeyArn":"1234abcd-12ab-34cd-56ef-1234567890ab"}}}`, "buckets.b1b.kmsKeyArn"},
		"unknown field":       {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `","inventry":{}}}}`, "unknown field"},
		"inventory format":    {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `","inventory":{"format":"JSON"}}}}`, "buckets.b1b.inventory.format"},
		"inventory frequency": {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `","inventory":{"frequency":"Hourly"}}}}`, "inventory.frequency"},
		"owner with create":   {`{"buckets":{"b1b":{"kmsKeyArn":"create","expectedOwner":"111122223333"}}}`, "buckets.b1b.expectedOwner"},
		"directory bucket":    {`{"buckets":{"fast--use1-az4--x-s3":{"kmsKeyArn":"` + key + `"}}}`, "directory buckets"},
		"memory":              {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"encrypt":{"memoryMB":64}}`, "encrypt.memoryMB"},
		"concurrency":         {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"planner":{"maxConcurrency":1}}`, "planner.maxConcurrency"},
		"source key":          {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"sourceKeyArns":["alias/old"]}`, "sourceKeyArns[0]"},
		"report key alias":    {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"jobs":{"reports":{"kmsKeyArn":"alias/reports"}}}`, "jobs.reports.kmsKeyArn"},
		"report bucket, no key": {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"jobs":{"reports":{"bucket":"audit"}}}`,
			"jobs.reports.kmsKeyArn"},
		"retention":                      {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"jobs":{"retentionDays":-1}}`, "jobs.retentionDays"},
		"encrypt setting on the planner": {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"planner":{"objectsInFlight":10}}`, "planner.objectsInFlight: only the encrypt"},
		"planner setting on encrypt":     {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"encrypt":{"listingRanges":4}}`, "encrypt.listingRanges: only the planner"},
		"uploads batch on the planner":   {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"planner":{"uploadsBatchSize":100}}`, "planner.uploadsBatchSize: only the encrypt"},
		"uploads batch too large":        {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"encrypt":{"uploadsBatchSize":20000}}`, "encrypt.uploadsBatchSize: 20000 must be from"},
		"object budget":                  {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `","maxObjectsPerSecond":-10}}}`, "buckets.b1b.maxObjectsPerSecond"},
		"log removal policy":             {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"logRemovalPolicy":"snapshot"}`, "logRemovalPolicy"},
		"KMS budget":                     {`{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"maxKmsRequestsPerSecond":-1}`, "maxKmsRequestsPerSecond"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var raw any
			if tc.json != "" {
				raw = tc.json
			}
			_, err := ParseConfig(raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
