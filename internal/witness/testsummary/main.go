// Command testsummary reads "go test -json" on its input, prints what go
// test prints without -json (each package's closing line, the output of
// failed tests, build errors), and ends with how many tests ran against
// each witness: the tests whose name ends in /emulator or /moto (see
// internal/witness). make test pipes its test run through it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// tally counts one witness's tests by result.
type tally struct{ passed, failed, skipped int }

func main() {
	counts, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	for _, w := range []string{"emulator", "moto"} {
		c := counts[w]
		fmt.Printf("witness %s: %d tests ran (%d passed, %d failed, %d skipped)\n", w, c.passed+c.failed+c.skipped, c.passed, c.failed, c.skipped)
	}
}

// summarize copies the output go test would print to out and counts the
// witness tests.
func summarize(in io.Reader, out io.Writer) (map[string]*tally, error) {
	counts := map[string]*tally{"emulator": {}, "moto": {}}
	held := map[string][]string{} // package/test → its output so far
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (go vet's or the build's own text): pass it on.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		id := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" {
				fmt.Fprint(out, e.Output)
			}
		case e.Action == "output":
			held[id] = append(held[id], e.Output)
		case e.Action == "pass" || e.Action == "fail" || e.Action == "skip":
			if e.Test == "" {
				continue
			}
			if e.Action == "fail" {
				for _, line := range held[id] {
					fmt.Fprint(out, line)
				}
			}
			delete(held, id)
			if c, ok := counts[path.Base(e.Test)]; ok {
				switch e.Action {
				case "pass":
					c.passed++
				case "fail":
					c.failed++
				default:
					c.skipped++
				}
			}
		}
	}
	// A test that never ended (a timeout or a crash): show what it said.
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, line := range held[id] {
			fmt.Fprint(out, line)
		}
	}
	return counts, sc.Err()
}
