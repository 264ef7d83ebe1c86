package main

import (
	"slices"
	"strings"
	"testing"
)

// TestQueuePoliciesRefuseOtherSenders: the work, uploads and control queues each
// carry a Deny of sqs:SendMessage to any principal (an explicit Deny in a
// resource-based policy overrides an identity policy's Allow: IAM User
// Guide, docs/IAM/latest/UserGuide/reference_policies_evaluation-logic.md)
// unless the caller is one of the stack's function roles or the operators'
// roles (aws:PrincipalArn), or the request comes from one of this stack's
// EventBridge rules (aws:SourceArn, which EventBridge sets on its
// deliveries to SQS: docs/eventbridge/latest/userguide/eb-use-resource-based.md).
// The enroll function's role is exempt on the control queue only (a new
// bucket's backfill), and its identity policy sends to no other queue.
// The DLQs carry none: SQS and the functions put dead letters there.
func TestQueuePoliciesRefuseOtherSenders(t *testing.T) {
	cfg := exampleConfig(t)
	cfg.OperatorRoleArns = []string{"arn:aws:iam::111122223333:role/s3rekey-operator"}
	tmpl, _ := synth(t, cfg)
	queues := resourcesOf(tmpl, "AWS::SQS::Queue")
	roles := resourcesOf(tmpl, "AWS::IAM::Role")
	functions := resourcesOf(tmpl, "AWS::Lambda::Function")
	// The two functions' roles are exempt, and the enroll function's on
	// the control queue; the custom resources' are not.
	var fnRoles, otherRoles []string
	enrollRole := ""
	for id, fn := range functions {
		if ref, ok := fn["Role"].(map[string]any)["Fn::GetAtt"].([]any); ok {
			switch {
			case strings.HasPrefix(id, "Encrypt") || strings.HasPrefix(id, "Planner"):
				fnRoles = append(fnRoles, ref[0].(string))
			case strings.HasPrefix(id, "Enroll"):
				enrollRole = ref[0].(string)
			default:
				otherRoles = append(otherRoles, ref[0].(string))
			}
		}
	}
	if len(fnRoles) != 2 || len(otherRoles) == 0 || enrollRole == "" {
		t.Fatalf("function roles %v, enroll %q, others %v", fnRoles, enrollRole, otherRoles)
	}
	enrollExempt := map[string]bool{}
	denied := map[string]bool{}
	for id, pol := range resourcesOf(tmpl, "AWS::SQS::QueuePolicy") {
		for _, s := range asList(pol["PolicyDocument"].(map[string]any)["Statement"]) {
			st := s.(map[string]any)
			if st["Effect"] != "Deny" || st["Sid"] != "OnlyS3RekeySends" {
				continue // the TLS-only Deny, and the rules' own Allow
			}
			if js(st["Principal"]) != `{"AWS":"*"}` && js(st["Principal"]) != `"*"` {
				t.Errorf("%s denies %v, want every principal", id, st["Principal"])
			}
			if js(st["Action"]) != `"sqs:SendMessage"` {
				t.Errorf("%s denies %v, want sqs:SendMessage", id, st["Action"])
			}
			cond := st["Condition"].(map[string]any)
			senders := js(cond["ArnNotEquals"].(map[string]any)["aws:PrincipalArn"])
			for _, r := range fnRoles {
				if _, ok := roles[r]; !ok || !strings.Contains(senders, r) {
					t.Errorf("%s does not exempt the function role %s: %s", id, r, senders)
				}
			}
			for _, r := range otherRoles {
				if strings.Contains(senders, r) {
					t.Errorf("%s exempts %s, a role that sends no task", id, r)
				}
			}
			for _, q := range asList(pol["Queues"]) {
				enrollExempt[q.(map[string]any)["Ref"].(string)] = strings.Contains(senders, enrollRole)
			}
			if !strings.Contains(senders, cfg.OperatorRoleArns[0]) {
				t.Errorf("%s does not exempt the operator role: %s", id, senders)
			}
			rules := js(cond["ArnNotLike"].(map[string]any)["aws:SourceArn"])
			if !strings.Contains(rules, `:rule/`) || !strings.Contains(rules, `AWS::StackName`) {
				t.Errorf("%s does not exempt the stack's EventBridge rules: %s", id, rules)
			}
			if len(cond) != 2 {
				t.Errorf("%s: conditions %s, want exactly the two exemptions", id, js(cond))
			}
			for _, q := range asList(pol["Queues"]) {
				ref := q.(map[string]any)["Ref"].(string)
				if _, ok := queues[ref]; !ok {
					t.Errorf("%s applies to %v, not a queue of the stack", id, q)
				}
				if !strings.Contains(js(st["Resource"]), ref) {
					t.Errorf("%s denies on %v, not on its queue %s", id, st["Resource"], ref)
				}
				denied[ref] = true
			}
		}
	}
	var want []string
	for id, q := range queues {
		if q["RedrivePolicy"] != nil { // the work, uploads and control queues
			want = append(want, id)
		}
	}
	slices.Sort(want)
	var got []string
	for id := range denied {
		got = append(got, id)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) != 3 {
		t.Errorf("queues that refuse other senders: %v, want the work, uploads and control queues %v", got, want)
	}
	for id, exempt := range enrollExempt {
		if control := strings.HasPrefix(id, "ControlQueue"); exempt != control {
			t.Errorf("queue %s exempts the enroll role: %v, want %v (the control queue only)", id, exempt, control)
		}
	}
	if len(enrollExempt) != 3 {
		t.Errorf("enroll exemption checked on %v, want the three queues", enrollExempt)
	}
}
