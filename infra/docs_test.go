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
