package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

// The docs' commands are run here, against the emulator, so that the docs
// stay true. Every command in a ```sh block of README.md and docs/*.md is
// one of:
//   - a make target, which must exist (CI runs make test; make demo runs
//     the demo, which internal/demo's tests run too);
//   - an s3rekey command (also as go run ./cmd/s3rekey), run in this
//     process;
//   - an AWS CLI or python3/boto3 command for a service the emulator
//     serves, run with the emulator's endpoint forced;
//   - a command that needs an AWS account (accountOnly), which no test can
//     run here and which must never reach AWS from one;
//   - shell settings: export, and NAME=VALUE.
//
// Anything else fails the test: a doc may show no command that nothing
// checks. Placeholders in angle brackets are replaced by the emulated
// deployment's values (placeholders); an unknown one fails the test. An
// s3rekey command must exit 0, or the status its comment names, and then
// say on stderr what the comment says ("# exits 1: bucket b does not
// exist").

// accountOnly are the commands that need an AWS account: deploying,
// removing, and the services the emulator does not model.
var accountOnly = []string{"make deploy", "npx cdk deploy", "npx cdk destroy", "npx cdk bootstrap", "aws lambda ", "aws cloudformation ",
	"aws organizations ", "aws s3 sync cdk.out/org-assets/"}

// emulatedServices are the AWS CLI services the emulator serves.
var emulatedServices = map[string]bool{"s3": true, "s3api": true, "sqs": true, "kms": true, "dynamodb": true}

// docCommand is one command of a doc, with where it is and the exit
// status it documents.
type docCommand struct {
	file  string
	line  int
	text  string
	exits int
	// says is what the doc says the failure's message holds.
	says string
}

// exitsComment is a comment that documents a command's exit status and
// what its message says.
var exitsComment = regexp.MustCompile(`#\s*exits (\d)(?:: (.*))?$`)

// docCommands reads the commands of every ```sh block of a markdown file,
// joining continued lines and dropping comments.
func docCommands(t *testing.T, path string) []docCommand {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []docCommand
	in := false
	pending, start, exits, says := "", 0, 0, ""
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```"):
			in = !in && strings.TrimPrefix(trimmed, "```") == "sh"
			continue
		case !in:
			continue
		}
		if pending == "" {
			start = i + 1
		}
		if m := exitsComment.FindStringSubmatch(trimmed); m != nil {
			exits, says = int(m[1][0]-'0'), strings.TrimSpace(m[2])
		}
		text := stripComment(trimmed)
		if strings.HasSuffix(text, "\\") {
			pending += strings.TrimSuffix(text, "\\") + " "
			continue
		}
		text = strings.TrimSpace(pending + text)
		pending = ""
		if text != "" {
			out = append(out, docCommand{file: filepath.Base(path), line: start, text: text, exits: exits, says: says})
		}
		exits, says = 0, ""
	}
	return out
}

// stripComment cuts a shell comment: a # at the start or after a space,
// outside quotes.
func stripComment(s string) string {
	quote := rune(0)
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// shellWords splits a command line as a shell would, for the quoting the
// docs use: single and double quotes, no escapes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// docWorld is an emulator serving the demo's world, and the values the
// docs' placeholders stand for.
type docWorld struct {
	url          string
	placeholders map[string]string
	output       *syncBuffer
	stop         func()
}

// startDocEmulator runs `s3rekey emulator` with args in this process, with
// its address replaced by a free port, and waits until it serves.
func startDocEmulator(t *testing.T, args []string) *docWorld {
	t.Helper()
	for i, a := range args {
		if a == "--addr" && i+1 < len(args) {
			args[i+1] = "127.0.0.1:0"
		}
		if strings.HasPrefix(a, "--addr=") {
			args[i] = "--addr=127.0.0.1:0"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, out, out) }()
	w := &docWorld{output: out, placeholders: map[string]string{}}
	w.stop = func() { cancel(); <-done }
	served := regexp.MustCompile(`serving .* at (http://127\.0\.0\.1:[0-9]+)`)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case code := <-done:
			t.Fatalf("the emulator exited (%d):\n%s", code, out.String())
		default:
		}
		if time.Now().After(deadline) {
			w.stop()
			t.Fatalf("the emulator did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(w.stop)
	m := served.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no address in the emulator's output:\n%s", out.String())
	}
	w.url = m[1]
	return w
}

// learnWorld reads, from a seeded emulator's output and its services, the
// values the placeholders stand for.
func (w *docWorld) learnWorld(t *testing.T) {
	t.Helper()
	text := w.output.String()
	scan := bufio.NewScanner(strings.NewReader(text))
	for scan.Scan() {
		line := strings.TrimSpace(scan.Text())
		if strings.HasPrefix(line, "s3://"+demo.InventoryBucket+"/") && strings.Contains(line, "/"+demo.DataBucket+"/") {
			w.placeholders["<manifest of demo-data>"] = line
		}
		if v, ok := strings.CutPrefix(line, "export "+jobs.EnvReportKey+"="); ok {
			w.placeholders["<report key ARN>"] = v
		}
	}
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.url), Credentials: staticCredentials()}
	sqsc := sqs.NewFromConfig(cfg)
	for name, queue := range map[string]string{"<WorkQueueUrl>": demo.WorkQueue, "<ControlQueueUrl>": demo.ControlQueue,
		"<WorkDeadLetterQueueUrl>": demo.WorkQueue + "-dlq", "<ControlDeadLetterQueueUrl>": demo.ControlQueue + "-dlq"} {
		out, err := sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
		if err != nil {
			t.Fatalf("queue %s of the seeded world: %v", queue, err)
		}
		w.placeholders[name] = aws.ToString(out.QueueUrl)
	}
	w.placeholders["<JobsTableName>"] = demo.JobsTable
	w.placeholders["<ReportLocation>"] = "s3://" + demo.ReportBucket + "/" + demo.ReportPrefix + "/"
}

// jobID finds a job of the world's table, once the docs' commands have
// made one.
func (w *docWorld) jobID(t *testing.T) string {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.url), Credentials: staticCredentials()}
	list, err := (&jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: demo.JobsTable}).List(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		if j.Kind != jobs.KindUploads {
			return j.ID
		}
	}
	t.Fatal("no backfill job in the table: a doc shows <job id> before any command made one")
	return ""
}

// stuckJob makes a job that will never finish (its planning began, and
// nothing is left to do it), for the docs' jobs cancel.
func (w *docWorld) stuckJob(t *testing.T) string {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.url), Credentials: staticCredentials()}
	id := jobs.ListingID(demo.DataBucket, "stuck/", false, time.Now())
	if _, err := (&jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: demo.JobsTable}).Begin(context.Background(), id, jobs.KindListing,
		"s3://"+demo.DataBucket+"/stuck/", 2, "s3://"+demo.ReportBucket+"/"+demo.ReportPrefix+"/"+id+"/"); err != nil {
		t.Fatal(err)
	}
	return id
}

func staticCredentials() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: emulator.AccessKeyID, SecretAccessKey: emulator.SecretAccessKey}, nil
	})
}

// makeTargets lists the Makefile's targets.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(data), -1) {
		targets[m[1]] = true
	}
	return targets
}

// realClients reports whether the AWS CLI and boto3 are here; CI must have
// them (.ci/run installs them).
func realClients(t *testing.T) bool {
	_, errCLI := os.Stat("/usr/bin/aws")
	errBoto := exec.Command("/usr/bin/python3", "-c", "import boto3").Run()
	if errCLI != nil || errBoto != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the AWS CLI or boto3 is missing: .ci/run installs awscli and python3-boto3")
		}
		return false
	}
	return true
}

func TestDocCommands(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	targets := makeTargets(t)
	clients := realClients(t)
	total := 0
	for _, file := range files {
		cmds := docCommands(t, file)
		total += len(cmds)
		if len(cmds) == 0 {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			runDocCommands(t, cmds, targets, clients)
		})
	}
	if total < 20 {
		t.Fatalf("found only %d commands in the docs: the reader is broken", total)
	}
}

// runDocCommands runs one doc's commands in order, in a directory of their
// own, against one emulator: the one the doc starts, or a seeded one.
func runDocCommands(t *testing.T, cmds []docCommand, targets map[string]bool, clients bool) {
	t.Chdir(t.TempDir())
	vars := map[string]string{}
	var world *docWorld
	ensureWorld := func(t *testing.T) *docWorld {
		if world == nil {
			world = startDocEmulator(t, []string{"emulator", "--seed", "200", "--policy-out", "policy.json"})
			world.learnWorld(t)
			t.Setenv("AWS_ENDPOINT_URL", world.url)
			t.Setenv("AWS_ACCESS_KEY_ID", emulator.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", emulator.SecretAccessKey)
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv(jobs.EnvTable, demo.JobsTable)
			// A job to show: the seeded inventories' backfills, run.
			if code := run(context.Background(), []string{"run", "--policy", "policy.json", "--work-queue", demo.WorkQueue, "--control-queue", demo.ControlQueue,
				"--until-idle", "--settle", "300ms"}, &syncBuffer{}, &syncBuffer{}); code != exitOK {
				t.Fatalf("running the seeded backfills: exit %d", code)
			}
		}
		return world
	}
	for _, c := range cmds {
		where := fmt.Sprintf("%s:%d: %s", c.file, c.line, c.text)
		text := c.text
		if startsWithAny(text, accountOnly) {
			if strings.Contains(text, "--endpoint") {
				t.Errorf("%s: an account-only command with an endpoint", where)
			}
			continue
		}
		words := shellWords(text)
		switch {
		case words[0] == "make":
			if len(words) != 2 || !targets[words[1]] {
				t.Errorf("%s: no such make target", where)
			}
			continue
		case words[0] == "export":
			for _, kv := range shellWords(substitute(t, where, text, world, vars))[1:] {
				k, v, _ := strings.Cut(kv, "=")
				if k != "AWS_ENDPOINT_URL" { // the test's endpoint stays
					t.Setenv(k, v)
				}
			}
			continue
		case regexp.MustCompile(`^[A-Z_]+=`).MatchString(text) && len(words) == 1:
			k, v, _ := strings.Cut(words[0], "=")
			vars[k] = v
			continue
		}
		// Commands below talk to the emulator.
		if words = cliWords(t, where, words); words == nil {
			continue
		}
		if words[0] == "s3rekey" && len(words) > 1 && words[1] == "emulator" {
			if world != nil {
				t.Fatalf("%s: a second emulator in one doc", where)
			}
			world = startDocEmulator(t, words[1:])
			if strings.Contains(text, "--seed") {
				world.learnWorld(t)
			}
			t.Setenv("AWS_ENDPOINT_URL", world.url)
			continue
		}
		w := ensureWorld(t)
		if strings.Contains(text, "<job id>") {
			w.placeholders["<job id>"] = w.jobID(t)
		}
		if strings.Contains(text, "<stuck job id>") && w.placeholders["<stuck job id>"] == "" {
			w.placeholders["<stuck job id>"] = w.stuckJob(t)
		}
		if words = cliWords(t, where, shellWords(substitute(t, where, text, w, vars))); words == nil {
			continue
		}
		switch words[0] {
		case "s3rekey":
			// Bounded: a command that does not end fails rather than hangs.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			var out, errOut syncBuffer
			code := run(ctx, words[1:], &out, &errOut)
			cancel()
			switch {
			case c.exits != exitOK && code == c.exits:
				if !strings.Contains(errOut.String(), "s3rekey "+words[1]+": ") || !strings.Contains(errOut.String(), c.says) {
					t.Errorf("%s: exit %d as documented, but stderr does not say %q:\n%s", where, code, c.says, errOut.String())
				}
			case c.exits != exitOK:
				t.Errorf("%s: exit %d, the doc says %d\n%s%s", where, code, c.exits, out.String(), errOut.String())
			case code != exitOK:
				var status syncBuffer
				run(context.Background(), []string{"status", "--work-queue", demo.WorkQueue, "--control-queue", demo.ControlQueue}, &status, &status)
				t.Errorf("%s: exit %d\n%s%s\nqueues:\n%s", where, code, out.String(), errOut.String(), status.String())
			}
		case "aws", "python3":
			if !clients {
				t.Logf("%s: not run, the AWS CLI or boto3 is not installed", where)
				continue
			}
			runRealClient(t, where, words, w.url)
		default:
			t.Errorf("%s: a command no test runs", where)
		}
	}
}

// cliWords reads `go run ./cmd/s3rekey ARGS` as `s3rekey ARGS`; it
// returns nil, failing the test, for a go run of anything else.
func cliWords(t *testing.T, where string, words []string) []string {
	t.Helper()
	if len(words) < 2 || words[0] != "go" || words[1] != "run" {
		return words
	}
	if len(words) < 3 || words[2] != "./cmd/s3rekey" {
		t.Errorf("%s: go run of something other than the CLI", where)
		return nil
	}
	return append([]string{"s3rekey"}, words[3:]...)
}

// substitute replaces $VARS, the documented endpoint and placeholders.
func substitute(t *testing.T, where, s string, w *docWorld, vars map[string]string) string {
	t.Helper()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, "$"+k, vars[k])
	}
	if w == nil {
		return s
	}
	s = strings.ReplaceAll(s, "http://127.0.0.1:4566", w.url)
	for k, v := range w.placeholders {
		s = strings.ReplaceAll(s, k, v)
	}
	if m := regexp.MustCompile(`<[^<>]+>`).FindString(s); m != "" {
		t.Errorf("%s: unknown placeholder %s", where, m)
	}
	return s
}

func startsWithAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// runRealClient runs the AWS CLI or python3 with only the emulator
// reachable: the endpoint is forced, and no configuration or instance
// metadata is read.
func runRealClient(t *testing.T, where string, words []string, url string) {
	t.Helper()
	args := words[1:]
	if words[0] == "aws" {
		i := 0
		if len(args) > 1 && args[0] == "--endpoint-url" {
			i = 2
		}
		if len(args) <= i || !emulatedServices[args[i]] {
			t.Errorf("%s: the emulator does not serve this service; list the command as account-only", where)
			return
		}
		if i == 0 {
			args = append([]string{"--endpoint-url", url}, args...)
		} else {
			args[1] = url
		}
	} else if !strings.Contains(strings.Join(args, " "), "endpoint_url=\""+url+"\"") {
		t.Errorf("%s: a python3 command without the emulator's endpoint_url", where)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/"+words[0], args...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+emulator.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+emulator.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", where, err, out)
	}
}

// TestEmulatorDocsEveryFlag fails when the emulator takes a flag that
// docs/emulator.md does not describe.
func TestEmulatorDocsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/emulator.md")
	if err != nil {
		t.Fatal(err)
	}
	var usage syncBuffer
	run(context.Background(), []string{"emulator", "--help"}, &usage, &usage)
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(flags) < 10 {
		t.Fatalf("found only %d flags in the usage:\n%s", len(flags), usage.String())
	}
	for _, f := range flags {
		if !strings.Contains(string(doc), "`--"+f[1]) {
			t.Errorf("docs/emulator.md does not describe --%s", f[1])
		}
	}
}
