package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeySafety: the circuit breaker's Paused metric has an alarm; a policy
// naming a key by alias gets an EventBridge rule on the KMS calls that
// change that alias (its CloudTrail event's requestParameters.aliasName)
// and an alarm on the rule's matches (AWS/Events MatchedEvents, dimension
// RuleName: eb-monitoring.md); trustedKeys reaches the functions' policy.
func TestKeySafety(t *testing.T) {
	cfg := exampleConfig(t)
	tmpl, _ := synth(t, cfg)
	// The example names its keys by ARN, except the one the stack creates,
	// which the policy names by the alias the stack gives it: that alias
	// is watched like any other.
	if rules := aliasRules(tmpl); len(rules) != 1 || js(rules[0]["EventPattern"]) == "" ||
		!strings.Contains(js(rules[0]["EventPattern"]), `"aliasName":["alias/s3rekey/buckets-example-archive"]`) {
		t.Errorf("alias rules %v, want one watching only the created key's alias", rules)
	}
	if !hasAlarm(tmpl, "Paused") {
		t.Error("no alarm on the Paused metric")
	}
	// The cold start reads each target's key state (DescribeKey) on keys
	// named by ARN, and may do nothing else with that statement.
	found := 0
	for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
		doc, _ := p["PolicyDocument"].(map[string]any)
		for _, st := range asList(doc["Statement"]) {
			m, _ := st.(map[string]any)
			if m["Sid"] == "CheckTargetKeys" {
				found++
				if js(m["Action"]) != `"kms:DescribeKey"` || m["Condition"] != nil {
					t.Errorf("CheckTargetKeys: %s", js(m))
				}
			}
		}
	}
	if found != 1 {
		t.Errorf("%d CheckTargetKeys statements, want 1 (encrypt's)", found)
	}

	cfg = configWith(t, func(c map[string]any) {
		c["buckets"].(map[string]any)["example-customer-uploads"].(map[string]any)["kmsKeyArn"] = "alias/app-data"
		c["trustedKeys"] = map[string]any{"keyArns": []any{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}
	})
	tmpl, _ = synth(t, cfg)
	rules := aliasRules(tmpl)
	if len(rules) != 1 {
		t.Fatalf("alias rules %v, want one", rules)
	}
	pattern := js(rules[0]["EventPattern"])
	for _, want := range []string{`"aws.kms"`, `"AWS API Call via CloudTrail"`, `"UpdateAlias"`, `"DeleteAlias"`, `"alias/app-data"`, `"alias/s3rekey/buckets-example-archive"`} {
		if !strings.Contains(pattern, want) {
			t.Errorf("rule pattern lacks %s: %s", want, pattern)
		}
	}
	if !hasAlarm(tmpl, "MatchedEvents") {
		t.Error("no alarm on the alias rule's matches")
	}
	// The policy reaches the functions as the policy layer's file.
	_, _, stack := synthStack(t, cfg)
	data, err := os.ReadFile(filepath.Join(stack.policyDir, "s3rekey", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"trustedKeys":{"keyArns":["arn:aws:kms:us-east-1:111122223333:key/1234abcd`) {
		t.Errorf("trustedKeys does not reach the functions' policy file: %s", data)
	}
	if enc := encryptPolicy(tmpl); strings.Contains(enc, "kms:ListResourceTags") {
		t.Errorf("kms:ListResourceTags granted though no trust is by tag: %s", enc)
	}
	tagged, _ := synth(t, configWith(t, func(c map[string]any) {
		c["buckets"].(map[string]any)["example-customer-uploads"].(map[string]any)["kmsKeyArn"] = "alias/app-data"
		c["trustedKeys"] = map[string]any{"tag": map[string]any{"key": "s3rekey-target", "value": "true"}}
	}))
	if enc := encryptPolicy(tagged); !strings.Contains(enc, "kms:ListResourceTags") {
		t.Errorf("trust by tag without kms:ListResourceTags: %s", enc)
	}
}

func aliasRules(tmpl map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range resourcesOf(tmpl, "AWS::Events::Rule") {
		if strings.Contains(js(r["EventPattern"]), "aws.kms") {
			out = append(out, r)
		}
	}
	return out
}

func hasAlarm(tmpl map[string]any, metric string) bool {
	for _, a := range resourcesOf(tmpl, "AWS::CloudWatch::Alarm") {
		if a["MetricName"] == metric {
			return true
		}
	}
	return false
}

func encryptPolicy(tmpl map[string]any) string {
	for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
		if strings.Contains(js(p["Roles"]), "EncryptServiceRole") {
			return js(p["PolicyDocument"])
		}
	}
	return ""
}
