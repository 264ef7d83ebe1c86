package main

import (
	"strings"
	"testing"
)

// resourceEntries are the template's resources of a type, whole (with
// DeletionPolicy), by logical ID.
func resourceEntries(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		if res := r.(map[string]any); res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// keyStatements are the statements of a key's key policy, by Sid.
func keyStatements(t *testing.T, key map[string]any) map[string]map[string]any {
	t.Helper()
	doc, _ := key["KeyPolicy"].(map[string]any)
	out := map[string]map[string]any{}
	for _, s := range asList(doc["Statement"]) {
		st := s.(map[string]any)
		sid, ok := st["Sid"].(string)
		if !ok {
			t.Errorf("key policy statement without a Sid (its reason): %s", js(st))
		}
		out[sid] = st
	}
	if len(out) == 0 {
		t.Fatalf("key without a key policy of its own: %s", js(key))
	}
	return out
}

// keyByPrefix is the one key whose logical ID starts with prefix.
func keyByPrefix(t *testing.T, tmpl map[string]any, prefix string) (string, map[string]any) {
	t.Helper()
	for id, k := range resourcesOf(tmpl, "AWS::KMS::Key") {
		if strings.HasPrefix(id, prefix) {
			return id, k
		}
	}
	t.Fatalf("no key %s*", prefix)
	return "", nil
}

// isCryptoAction: the action uses a key rather than administers it.
func isCryptoAction(a string) bool {
	for _, p := range []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey", "kms:GenerateMac", "kms:Sign", "kms:DeriveSharedSecret"} {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return a == "kms:*" || a == "*"
}

// TestEncryptedAndKept proves, on the synthesized template, that what
// s3rekey stores is encrypted under keys of its own and kept.
func TestEncryptedAndKept(t *testing.T) {
	tmpl, _ := synth(t, exampleConfig(t))

	t.Run("inventory bucket under SSE-KMS with a bucket key, and S3 Inventory may use the key", func(t *testing.T) {
		keyID, key := keyByPrefix(t, tmpl, "InventoryKey")
		var found bool
		for id, b := range resourcesOf(tmpl, "AWS::S3::Bucket") {
			if !strings.HasPrefix(id, "InventoryBucket") {
				continue
			}
			found = true
			enc := js(b["BucketEncryption"])
			// The bucket's default encryption names the key by ARN: S3
			// Inventory needs a key ARN in the inventory configuration or
			// the destination's default encryption
			// (docs/AmazonS3/latest/userguide/configure-inventory.md).
			for _, want := range []string{`"SSEAlgorithm":"aws:kms"`, `"BucketKeyEnabled":true`, `"KMSMasterKeyID":{"Fn::GetAtt":["` + keyID + `","Arn"]}`} {
				if !strings.Contains(enc, want) {
					t.Errorf("inventory bucket encryption lacks %s: %s", want, enc)
				}
			}
		}
		if !found {
			t.Fatal("no inventory bucket")
		}
		// docs/AmazonS3/latest/userguide/configure-inventory.md, "Granting
		// Amazon S3 permission to use your customer managed key for
		// encryption": the S3 service principal, kms:GenerateDataKey, the
		// source account and buckets as conditions.
		st := keyStatements(t, key)["S3InventoryDelivery"]
		got := js(st)
		for _, want := range []string{`"Service":"s3.amazonaws.com"`, `"Action":"kms:GenerateDataKey"`, `"aws:SourceAccount":{"Ref":"AWS::AccountId"}`, `"aws:SourceArn"`} {
			if !strings.Contains(got, want) {
				t.Errorf("inventory key's delivery statement lacks %s: %s", want, got)
			}
		}
		planner := js(keyStatements(t, key)["PlannerReadsInventory"])
		for _, want := range []string{"PlannerServiceRole", `"Action":"kms:Decrypt"`, `"kms:ViaService":{"Fn::Join":["",["s3.",{"Ref":"AWS::Region"}`} {
			if !strings.Contains(planner, want) {
				t.Errorf("the planner cannot read inventory reports through S3 (%s): %s", want, planner)
			}
		}
	})

	t.Run("log groups under the logs key, with the configured retention, kept by default", func(t *testing.T) {
		keyID, key := keyByPrefix(t, tmpl, "LogsKey")
		groups := resourceEntries(tmpl, "AWS::Logs::LogGroup")
		if len(groups) != 3 {
			t.Errorf("%d log groups, want one per function", len(groups))
		}
		for id, lg := range groups {
			props := lg["Properties"].(map[string]any)
			if got := js(props["KmsKeyId"]); got != `{"Fn::GetAtt":["`+keyID+`","Arn"]}` {
				t.Errorf("log group %s under key %s, want %s", id, got, keyID)
			}
			if props["RetentionInDays"] != 30.0 {
				t.Errorf("log group %s keeps logs %v days, want logRetentionDays (30)", id, props["RetentionInDays"])
			}
			if lg["DeletionPolicy"] != "Retain" || lg["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("log group %s is deleted with the stack (%v): logRemovalPolicy defaults to retain", id, lg["DeletionPolicy"])
			}
		}
		// docs/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.md, step 2:
		// the regional CloudWatch Logs principal, limited to the account's
		// log groups by the encryption context.
		logs := js(keyStatements(t, key)["CloudWatchLogs"])
		for _, want := range []string{`"Service":{"Fn::Join":["",["logs.",{"Ref":"AWS::Region"},".amazonaws.com"]]}`, `"kms:GenerateDataKey*"`, `"kms:Decrypt"`,
			`"kms:EncryptionContext:aws:logs:arn"`, `":log-group:*"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs key's CloudWatch Logs statement lacks %s: %s", want, logs)
			}
		}
		// Step 3: the callers of PutLogEvents, the functions' roles.
		writers := js(keyStatements(t, key)["FunctionsWriteLogs"])
		for _, want := range []string{"EncryptServiceRole", "PlannerServiceRole", "EnrollServiceRole", `"kms:ViaService"`} {
			if !strings.Contains(writers, want) {
				t.Errorf("logs key's writers lack %s: %s", want, writers)
			}
		}

		destroyed, _ := synth(t, configWith(t, func(c map[string]any) { c["logRemovalPolicy"] = "destroy"; c["logRetentionDays"] = 90 }))
		for id, lg := range resourceEntries(destroyed, "AWS::Logs::LogGroup") {
			if lg["DeletionPolicy"] != "Delete" {
				t.Errorf("log group %s with logRemovalPolicy destroy: DeletionPolicy %v", id, lg["DeletionPolicy"])
			}
			if days := lg["Properties"].(map[string]any)["RetentionInDays"]; days != 90.0 {
				t.Errorf("log group %s keeps logs %v days, want 90", id, days)
			}
		}
	})

	t.Run("report bucket versioned, noncurrent versions expire with the job records", func(t *testing.T) {
		var found bool
		for id, b := range resourcesOf(tmpl, "AWS::S3::Bucket") {
			if !strings.HasPrefix(id, "ReportBucket") {
				continue
			}
			found = true
			if got := js(b["VersioningConfiguration"]); got != `{"Status":"Enabled"}` {
				t.Errorf("report bucket versioning %s", got)
			}
			rules := js(b["LifecycleConfiguration"])
			for _, want := range []string{`"NoncurrentVersionExpiration":{"NoncurrentDays":90}`, `"Status":"Enabled"`, `"AbortIncompleteMultipartUpload"`} {
				if !strings.Contains(rules, want) {
					t.Errorf("report bucket lifecycle lacks %s: %s", want, rules)
				}
			}
		}
		if !found {
			t.Fatal("no report bucket")
		}
		shorter, _ := synth(t, configWith(t, func(c map[string]any) { c["jobs"].(map[string]any)["retentionDays"] = 7 }))
		for id, b := range resourcesOf(shorter, "AWS::S3::Bucket") {
			if strings.HasPrefix(id, "ReportBucket") && !strings.Contains(js(b["LifecycleConfiguration"]), `"NoncurrentDays":7`) {
				t.Errorf("jobs.retentionDays 7: report lifecycle %s", js(b["LifecycleConfiguration"]))
			}
		}
	})

	t.Run("every created key separates administration from use", func(t *testing.T) {
		keys := resourceEntries(tmpl, "AWS::KMS::Key")
		if len(keys) == 0 {
			t.Fatal("no keys")
		}
		for id, k := range keys {
			if k["DeletionPolicy"] != "Retain" {
				t.Errorf("key %s is deleted with the stack", id)
			}
			props := k["Properties"].(map[string]any)
			if props["EnableKeyRotation"] != true {
				t.Errorf("key %s without rotation", id)
			}
			stmts := keyStatements(t, props)
			admin, ok := stmts["KeyAdministration"]
			if !ok || !strings.Contains(js(admin["Action"]), "kms:Put*") || !strings.Contains(js(admin["Action"]), "kms:ScheduleKeyDeletion") {
				t.Errorf("key %s has no administration statement: %s", id, js(stmts))
			}
			if _, ok := stmts["KeyUseThroughService"]; !ok {
				t.Errorf("key %s has no use statement", id)
			}
			for sid, st := range stmts {
				var crypto, administers bool
				for _, a := range asList(st["Action"]) {
					a := a.(string)
					if isCryptoAction(a) {
						crypto = true
					} else if a != "kms:DescribeKey" && a != "kms:Describe*" {
						administers = true
					}
					if a == "kms:*" || a == "*" {
						t.Errorf("key %s statement %s grants %s", id, sid, a)
					}
				}
				if crypto && administers {
					t.Errorf("key %s statement %s both administers and uses the key: %s", id, sid, js(st["Action"]))
				}
				// Use is only ever through a service: a service principal,
				// or kms:ViaService.
				_, service := st["Principal"].(map[string]any)["Service"]
				if crypto && !service && !strings.Contains(js(st["Condition"]), `"kms:ViaService"`) {
					t.Errorf("key %s statement %s allows direct use: %s", id, sid, js(st))
				}
			}
		}
	})
}
