package main

import (
	"strings"
	"testing"
)

// The summary keeps go test's closing lines and a failed test's output,
// drops passing tests' chatter, and counts tests per witness by the last
// element of their names.
func TestSummarize(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA/emulator","Output":"=== RUN   TestA/emulator\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA/emulator"}`,
		`{"Action":"output","Package":"p","Test":"TestA/moto","Output":"    a_test.go:9: moto said no\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA/moto"}`,
		`{"Action":"skip","Package":"p","Test":"TestB/moto"}`,
		`{"Action":"pass","Package":"p","Test":"TestC/emulatorish"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}`,
		`{"Action":"output","Package":"q","Output":"PASS\n"}`,
		`{"Action":"output","Package":"q","Output":"ok  \tq\t0.2s\n"}`,
	}, "\n")
	var out strings.Builder
	counts, err := summarize(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"moto said no", "FAIL\tp\t0.1s", "ok  \tq\t0.2s"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "=== RUN") || strings.Contains(text, "PASS\n") {
		t.Errorf("output keeps a passing test's chatter:\n%s", text)
	}
	if e, m := counts["emulator"], counts["moto"]; *e != (tally{passed: 1}) || *m != (tally{failed: 1, skipped: 1}) {
		t.Errorf("counts emulator %+v moto %+v", *e, *m)
	}
}
