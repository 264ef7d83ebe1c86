package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// readDoc reads a page of docs/.
func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// configPaths lists every field of a configuration type as the docs name
// it: JSON names joined by dots, "*" for a map's entries, "[]" for a list's.
// Settings (a policy.Bucket) are listed field by field once, under
// buckets.*: defaults, rules[].settings and overrides.* take the same
// fields, and the docs say so.
func configPaths(typ reflect.Type, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeOf(policy.Bucket{}) && prefix != "buckets.*" {
		return nil
	}
	var out []string
	switch typ.Kind() {
	case reflect.Map:
		return configPaths(typ.Elem(), prefix+".*")
	case reflect.Slice:
		return configPaths(typ.Elem(), prefix+"[]")
	case reflect.Struct:
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := strings.TrimPrefix(prefix+"."+name, ".")
			out = append(out, path)
			out = append(out, configPaths(typ.Field(i).Type, path)...)
		}
	}
	return out
}

// TestConfigurationDocsCoverEveryField fails when cdk.json (and so the
// policy, which it contains) has a field docs/configuration.md does not
// name. A setting only one function reads is refused on the other, and so
// needs no entry there.
func TestConfigurationDocsCoverEveryField(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	paths := append(configPaths(reflect.TypeOf(Config{}), ""), configPaths(reflect.TypeOf(policy.Document{}), "")...)
	if len(paths) < 40 {
		t.Fatalf("found only %d fields: the walk is broken", len(paths))
	}
	for _, path := range paths {
		function, field, nested := strings.Cut(path, ".")
		if owner, ok := functionOnly[field]; nested && (function == "encrypt" || function == "planner") && ok && owner != function {
			continue
		}
		if !strings.Contains(doc, "`"+path+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", path)
		}
	}
}

// TestConfigurationDocsCoverEveryVariable fails when the code reads an
// S3REKEY_ environment variable docs/configuration.md does not name.
func TestConfigurationDocsCoverEveryVariable(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	variable := regexp.MustCompile(`"(S3REKEY_[A-Z0-9_]+)"`)
	found := map[string]bool{}
	for _, dir := range []string{"../internal", "../cmd", "../functions", "."} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range variable.FindAllStringSubmatch(string(src), -1) {
				found[m[1]] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %d variables: the scan is broken", len(found))
	}
	var missing []string
	for v := range found {
		if !strings.Contains(doc, "`"+v+"`") {
			missing = append(missing, v)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md does not document %v", missing)
	}
}

// TestOperationsCoversEveryAlarm fails when the stack creates an alarm the
// runbook does not explain.
func TestOperationsCoversEveryAlarm(t *testing.T) {
	doc := readDoc(t, "operations.md")
	tmpl, _ := synth(t, exampleConfig(t))
	alarms := resourcesOf(tmpl, "AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("the stack creates no alarm")
	}
	logicalID := regexp.MustCompile(`^(.+)Alarm[0-9A-F]{8}$`)
	for id := range alarms {
		m := logicalID.FindStringSubmatch(id)
		if m == nil {
			t.Errorf("alarm %s: unexpected logical id", id)
			continue
		}
		if !strings.Contains(doc, "| `"+m[1]+"` |") {
			t.Errorf("docs/operations.md has no row for the alarm %s", m[1])
		}
	}
}

// TestDocLinksResolve fails on a relative link of README.md, BENCHMARKS.md
// or docs/ to a file or heading that is not there.
func TestDocLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md", "../BENCHMARKS.md")
	fence := regexp.MustCompile("(?s)```.*?```")
	heading := regexp.MustCompile(`(?m)^#+ (.*)$`)
	notSlug := regexp.MustCompile(`[^\w\- ]`)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := func(path string) map[string]bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		out := map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(string(data), ""), -1) {
			slug := notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), "")
			out[strings.ReplaceAll(slug, " ", "-")] = true
		}
		return out
	}
	links := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			if strings.Contains(m[1], "://") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(m[1], "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link to %s: no such file", file, m[1])
				continue
			}
			if anchor != "" && strings.HasSuffix(target, ".md") && !anchors(target)[anchor] {
				t.Errorf("%s: link to %s: no such heading", file, m[1])
			}
		}
	}
	if links < 20 {
		t.Fatalf("found only %d links: the reader is broken", links)
	}
}

// securityTables reads docs/security.md's statement tables: for each role
// heading (**encrypt**, **planner**, **enroll**), the Sids the first column
// of the table under it names.
func securityTables(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	sid := regexp.MustCompile("`([A-Z][A-Za-z0-9]+)`")
	role := ""
	for _, line := range strings.Split(readDoc(t, "security.md"), "\n") {
		switch {
		case strings.HasPrefix(line, "**") && strings.HasSuffix(line, "**") && !strings.Contains(line[2:len(line)-2], "*"):
			role = strings.Trim(line, "*")
		case role != "" && strings.HasPrefix(line, "| statement |"):
			out[role] = map[string]bool{}
		case role != "" && out[role] != nil && strings.HasPrefix(line, "| `"):
			first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
			for _, m := range sid.FindAllStringSubmatch(first, -1) {
				out[role][m[1]] = true
			}
		case !strings.HasPrefix(line, "|"):
			if out[role] != nil {
				role = ""
			}
		}
	}
	return out
}

// TestSecurityDocsMatchTheTemplate: the statements docs/security.md's
// tables give each role are the ones the template's roles carry, both
// ways, over configurations that between them render every statement
// (the example; a tag rule that copies, with excluded prefixes and keys
// trusted by tag). The queue and key policies' own Sids are named there
// too.
func TestSecurityDocsMatchTheTemplate(t *testing.T) {
	docs := securityTables(t)
	if len(docs) != 3 {
		t.Fatalf("found tables for %v, want encrypt, planner and enroll", docs)
	}
	template := map[string]map[string]bool{"encrypt": {}, "planner": {}, "enroll": {}}
	own := map[string]bool{}
	for _, cfg := range []*Config{exampleConfig(t), configWith(t, func(c map[string]any) {
		c["rules"] = []any{map[string]any{"name": "tagged", "select": map[string]any{"tags": map[string]string{"team": "a"}},
			"settings": map[string]any{"kmsKeyArn": "alias/team-a", "excludePrefixes": []string{"tmp/"},
				"unsupportedSources": map[string]string{"notEncrypted": "copy"}}}}
		c["trustedKeys"] = map[string]any{"tag": map[string]string{"key": "s3rekey", "value": "target"}}
	})} {
		tmpl, _ := synth(t, cfg)
		for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
			for role := range template {
				if !strings.Contains(js(p["Roles"]), strings.ToUpper(role[:1])+role[1:]+"ServiceRole") {
					continue
				}
				for _, st := range asList(p["PolicyDocument"].(map[string]any)["Statement"]) {
					if sid, ok := st.(map[string]any)["Sid"].(string); ok {
						template[role][sid] = true
					}
				}
			}
		}
		for _, typ := range []string{"AWS::SQS::QueuePolicy", "AWS::KMS::Key", "AWS::S3::BucketPolicy"} {
			for _, p := range resourcesOf(tmpl, typ) {
				doc, _ := p["PolicyDocument"].(map[string]any)
				if typ == "AWS::KMS::Key" {
					doc, _ = p["KeyPolicy"].(map[string]any)
				}
				for _, st := range asList(doc["Statement"]) {
					// CDK names the statements it adds for EventBridge targets
					// after the rule's construct path.
					if sid, ok := st.(map[string]any)["Sid"].(string); ok && !strings.HasPrefix(sid, "AllowEventRule") {
						own[sid] = true
					}
				}
			}
		}
	}
	for role, sids := range template {
		if len(sids) < 3 {
			t.Fatalf("%s: only %v in the template: the reader is broken", role, sids)
		}
		for sid := range sids {
			if !docs[role][sid] {
				t.Errorf("the template's %s role has statement %s, which docs/security.md's %s table does not give", role, sid, role)
			}
		}
		for sid := range docs[role] {
			if !sids[sid] {
				t.Errorf("docs/security.md's %s table gives statement %s, which the template's %s role does not have", role, sid, role)
			}
		}
	}
	doc := readDoc(t, "security.md")
	if len(own) < 5 {
		t.Fatalf("only %v in the resource policies: the reader is broken", own)
	}
	for sid := range own {
		if !strings.Contains(doc, "`"+sid+"`") {
			t.Errorf("docs/security.md does not name the resource policy statement %s", sid)
		}
	}
}
