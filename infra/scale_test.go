package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// scaleConfig is a cdk.json context of n explicit buckets (or, with rules,
// the same buckets selected by name pattern and tag, with exclusions and
// overrides), each with its own prefixes, inventory and default encryption,
// as a generated estate would be.
func scaleConfig(t *testing.T, n int, rules bool) *Config {
	t.Helper()
	key := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	c := map[string]any{
		"maxKmsRequestsPerSecond": 1500,
		"sourceKeyArns":           []string{"arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"},
		"jobs":                    map[string]any{"reports": map[string]any{"kmsKeyArn": "create"}},
	}
	buckets := map[string]any{}
	for i := range n {
		buckets[fmt.Sprintf("estate-bucket-%05d", i)] = map[string]any{"kmsKeyArn": key, "bucketKeyEnabled": true,
			"excludePrefixes": []string{"logs/"}, "setDefaultEncryption": true, "inventory": map[string]any{"format": "CSV"}, "maxObjectsPerSecond": 500}
	}
	if rules {
		c["defaults"] = map[string]any{"bucketKeyEnabled": true, "setDefaultEncryption": true, "inventory": map[string]any{}}
		c["exclude"] = []any{map[string]any{"names": []string{"*-tfstate"}}, map[string]any{"tags": map[string]string{"s3rekey": "off"}}}
		c["rules"] = []any{
			map[string]any{"name": "confidential", "select": map[string]any{"tags": map[string]string{"data-classification": "confidential"}},
				"settings": map[string]any{"kmsKeyArn": key, "versions": "all"}},
			map[string]any{"name": "estate", "select": map[string]any{"names": []string{"estate-*"}}, "settings": map[string]any{"kmsKeyArn": key}},
			map[string]any{"name": "everything", "select": map[string]any{"all": true}, "settings": map[string]any{"kmsKeyArn": key}},
		}
		overrides := map[string]any{}
		for name := range buckets {
			overrides[name] = map[string]any{"excludePrefixes": []string{"tmp/"}}
		}
		c["overrides"] = overrides
	} else {
		c["buckets"] = buckets
	}
	cfg, err := ParseConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// stackResources is the stack's size at any number of buckets (with the
// scale configurations' one created report key): 50 before the uploads
// path, and 7 more for it: the uploads queue and its DLQ, their queue
// policies, encrypt's event source mapping on the uploads queue, and the
// alarms UploadsDeadLetters, EnforcementLag and BackfillStalled in place of
// WorkBacklog.
const stackResources = 57

// shape is what must not grow with the number of buckets.
type shape struct {
	resources   int
	types       map[string]int
	env         map[string]int // function description → environment size in bytes
	size        int            // template bytes
	rolePolicy  map[string]int // role → its inline policies' characters, whitespace removed
	patternSize int            // the largest event pattern, characters
}

var whitespace = regexp.MustCompile(`\s+`)

func shapeOf(t *testing.T, cfg *Config) shape {
	tmpl, _ := synth(t, cfg)
	return shapeOfTemplate(tmpl)
}

func shapeOfTemplate(tmpl map[string]any) shape {
	raw, _ := json.Marshal(tmpl)
	sh := shape{types: map[string]int{}, env: map[string]int{}, size: len(raw), rolePolicy: map[string]int{}}
	for _, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		sh.resources++
		sh.types[fmt.Sprint(res["Type"])]++
		props, _ := res["Properties"].(map[string]any)
		switch res["Type"] {
		case "AWS::Lambda::Function":
			sh.env[fmt.Sprint(props["Description"])] = len(js(props["Environment"]))
		case "AWS::IAM::Policy":
			for _, role := range asList(props["Roles"]) {
				sh.rolePolicy[js(role)] += len(whitespace.ReplaceAllString(js(props["PolicyDocument"]), ""))
			}
		case "AWS::Events::Rule":
			sh.patternSize = max(sh.patternSize, len(js(props["EventPattern"])))
		}
	}
	return sh
}

// TestStackSizeIndependentOfBuckets: 2 buckets, 5,000 explicit buckets and
// a rule-based policy over them synthesize the same resources and the same
// function environments, within CloudFormation's, IAM's and EventBridge's
// limits:
//   - CloudFormation: 500 resources per stack; a template body from S3 of
//     1 MB (docs/AWSCloudFormation/latest/UserGuide/cloudformation-limits.md);
//   - IAM: a role's inline policies together at most 10,240 characters,
//     whitespace not counted (docs/IAM/latest/UserGuide/reference_iam-quotas.md);
//   - EventBridge: an event pattern of at most 4,096 characters
//     (docs/eventbridge/latest/APIReference/API_PutRule.md, EventPattern);
//   - Lambda: a function's environment variables together at most 4 KB
//     (docs/lambda/latest/dg/gettingstarted-limits.md).
//
// The constant: stackResources, at any number of buckets. The counts are
// equal, not within a margin; what differs is only the policy layer's
// content (its asset hash), and the grants, which list up to 20 bucket
// names and grant the account's buckets beyond.
func TestStackSizeIndependentOfBuckets(t *testing.T) {
	small := shapeOf(t, scaleConfig(t, 2, false))
	if small.resources != stackResources {
		t.Errorf("%d resources with 2 buckets, want the constant %d (%v)", small.resources, stackResources, small.types)
	}
	for name, cfg := range map[string]*Config{"5,000 explicit buckets": scaleConfig(t, 5000, false), "rules over 5,000 buckets": scaleConfig(t, 5000, true)} {
		t.Run(name, func(t *testing.T) {
			big := shapeOf(t, cfg)
			if big.resources != small.resources || js(big.types) != js(small.types) {
				t.Errorf("%d resources %v, with 2 buckets %d %v", big.resources, big.types, small.resources, small.types)
			}
			for fn, size := range small.env {
				if big.env[fn] != size {
					t.Errorf("%s's environment is %d bytes, with 2 buckets %d", fn, big.env[fn], size)
				}
			}
			if len(big.env) != len(small.env) {
				t.Errorf("functions %v, with 2 buckets %v", big.env, small.env)
			}
			for _, sh := range []shape{small, big} {
				if sh.resources > 500 || sh.size >= 1<<20 || sh.patternSize > 4096 {
					t.Errorf("%d resources, %d template bytes, event pattern of %d characters", sh.resources, sh.size, sh.patternSize)
				}
				for fn, size := range sh.env {
					if size > 4096 {
						t.Errorf("%s's environment is %d bytes, over Lambda's 4 KB", fn, size)
					}
				}
				for role, n := range sh.rolePolicy {
					if n > 10240 {
						t.Errorf("role %s's policies are %d characters, over IAM's 10,240", role, n)
					}
				}
			}
			t.Logf("%d resources, template %d bytes (2 buckets: %d), largest role policy %d characters", big.resources, big.size, small.size, maxOf(big.rolePolicy))
		})
	}
}

func maxOf(m map[string]int) int {
	out := 0
	for _, v := range m {
		out = max(out, v)
	}
	return out
}

// The policy of 5,000 buckets is far over the 4 KB that stopped
// deployment at about 25 buckets when it travelled in the environment;
// it reaches the functions whole, through the layer.
func TestLargePolicyReachesTheFunctions(t *testing.T) {
	cfg := scaleConfig(t, 5000, false)
	if len(cfg.PolicyJSON) < 100*4096 {
		t.Fatalf("the generated policy is only %d bytes", len(cfg.PolicyJSON))
	}
	_, _, stack := synthStack(t, cfg)
	p, err := loadLayerPolicy(stack)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := p.Lookup("estate-bucket-04999"); !ok || !strings.HasSuffix(b.KMSKeyARN, "1234567890ab") || len(p.Buckets) != 5000 {
		t.Errorf("the layer's policy: %d buckets, estate-bucket-04999 %+v", len(p.Buckets), b)
	}
}
