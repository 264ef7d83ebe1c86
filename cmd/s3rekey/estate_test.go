package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// rulesPolicy writes a policy that governs by rule: photos by name, a
// tagged bucket by tag, an excluded one never.
func (c *cliEnv) rulesPolicy(t *testing.T) string {
	t.Helper()
	for _, b := range []string{"hr-files", "photos-tfstate", "misc"} {
		c.Bucket(t, b, false)
	}
	if _, err := c.S3.PutBucketTagging(context.Background(), &s3.PutBucketTaggingInput{Bucket: aws.String("hr-files"), Tagging: &types.Tagging{
		TagSet: []types.Tag{{Key: aws.String("data-classification"), Value: aws.String("confidential")}}}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	doc := fmt.Sprintf(`{"exclude":[{"names":["*-tfstate","inventory"]}],"rules":[
		{"name":"confidential","select":{"tags":{"data-classification":"confidential"}},"settings":{"kmsKeyArn":%q,"versions":"all"}},
		{"name":"photos","select":{"names":["photos*"]},"settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true}},
		{"name":"unused","select":{"names":["nothing-*"]},"settings":{"kmsKeyArn":%q}}],
		"overrides":{"photos":{"excludePrefixes":["tmp/"]}}}`, c.target, c.target, c.target)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyExplainAndCheck(t *testing.T) {
	c := newCLIEnv(t, 0)
	pol := c.rulesPolicy(t)
	code, out, errOut := c.cli(t, "policy", "explain", "--policy", pol, "photos", "hr-files", "photos-tfstate", "misc")
	if code != exitOK {
		t.Fatalf("explain: exit %d: %s", code, errOut)
	}
	for _, want := range []string{`rules\[1\] photos \(with its override\)`, `excludePrefixes\s+\[tmp/\]`, `rules\[0\] confidential`, `versions\s+all`,
		`not managed: excluded by exclude\[0\]`, "not managed: nothing selects it"} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = c.cli(t, "policy", "check", "--policy", pol, "--json")
	var rep struct {
		Buckets []struct {
			Bucket, GovernedBy string
			Managed            bool
		}
		Findings []struct{ Where, Problem string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if code != exitFailure || len(rep.Findings) != 1 || rep.Findings[0].Where != "rules[2] unused" || len(rep.Buckets) != 5 {
		t.Errorf("check: exit %d, %+v; want exit 1 naming the rule that governs nothing", code, rep)
	}
	if code, _, errOut := c.cli(t, "policy", "explain", "--policy", pol); code != exitUsage || !strings.Contains(errOut, "BUCKET") {
		t.Errorf("explain without a bucket: exit %d %s", code, errOut)
	}
}

func TestEstateCommand(t *testing.T) {
	c := newCLIEnv(t, 3)
	pol := c.rulesPolicy(t)
	if _, err := c.Emu.PublishInventory(emulatorInventory("photos", "inventory")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := c.cli(t, "estate", "--policy", pol, "--inventory-bucket", "inventory", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Buckets []struct {
			Name, GovernedBy, DefaultEncryption string
			Managed, EventBridge                bool
			Objects                             int64
		}
		Managed int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]string{}
	for _, b := range rep.Buckets {
		got[b.Name] = fmt.Sprintf("%v %s %d", b.Managed, b.GovernedBy, b.Objects)
	}
	want := map[string]string{"photos": "true rules[1] photos 3", "hr-files": "true rules[0] confidential -1", "photos-tfstate": "false exclude[0] -1",
		"inventory": "false exclude[0] -1"}
	for b, w := range want {
		if got[b] != w {
			t.Errorf("%s: %q, want %q", b, got[b], w)
		}
	}
	code, out, _ = c.cli(t, "estate", "--policy", pol, "--inventory-bucket", "inventory")
	if code != exitOK || !strings.Contains(out, "photos") || !strings.Contains(out, "policy: rules[2] unused: governs no bucket") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

func emulatorInventory(source, dest string) emulator.InventoryOptions {
	return emulator.InventoryOptions{SourceBucket: source, DestinationBucket: dest, Prefix: "s3rekey", Format: "CSV", CurrentOnly: true}
}
