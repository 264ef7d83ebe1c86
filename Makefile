# s3rekey — build, test and run everything from here.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Every functions/<name> with a main.go is a Lambda function.
FUNCTIONS   := $(patsubst functions/%/main.go,%,$(wildcard functions/*/main.go))
BENCHTIME   ?= 1x

CDK         ?= npx --no-install cdk
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION = 1

FUZZTIME    ?= 30s
# Every fuzz target, as package:Target.
FUZZ_TARGETS := internal/emulator:FuzzS3Request internal/emulator:FuzzJSONRequest internal/emulator:FuzzParseFlags \
	internal/messages:FuzzDecode internal/messages:FuzzKeyRoundTrip internal/policy:FuzzParse internal/planner:FuzzDecodeJobs \
	internal/inventory:FuzzParseManifest internal/inventory:FuzzCSVRows \
	internal/emulator/iam:FuzzParsePolicy internal/emulator/sqs:FuzzQueryInput \
	internal/emulator/sts:FuzzServe internal/emulator/organizations:FuzzDispatch \
	internal/emulator/dynamodb:FuzzExpressions internal/jobs:FuzzReadPart \
	internal/metatable:FuzzReadAvroFile internal/metatable:FuzzParseMetadata internal/metatable:FuzzScanParquet \
	internal/verify:FuzzCheck internal/deployment:FuzzParse \
	internal/enroll:FuzzParseEvent

.PHONY: all build test test-faults soak fuzz lint demo demo-org bench synth deploy clean

all: build test

## build: every functions/<fn> as a Lambda binary, build/<fn>/bootstrap (linux/arm64)
build:
	@mkdir -p build
	@for fn in $(FUNCTIONS); do \
		echo "build/$$fn/bootstrap"; \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath \
			-ldflags='-s -w' -o build/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

## test: lint, then every package's tests with the race detector, through
## a summary that prints go test's usual lines and ends with how many tests
## ran against each witness (the emulator, and moto, which the witness
## tests start as python3 -m moto.server on a loopback port). The CDK
## stack tests (./infra) run without it: jsii-runtime-go v1.119.0's own
## Close calls exec.Cmd.Wait from two goroutines, a race the detector
## reports at exit; the stack code itself is single-threaded.
test: lint
	@mkdir -p build
	$(GO) build -o build/testsummary ./internal/witness/testsummary
	@{ $(GO) test -race -count=1 -json $$($(GO) list ./... | grep -v '/infra$$'); echo $$? > build/test.status; } | build/testsummary || exit 1; \
		exit $$(cat build/test.status)
	$(GO) test -count=1 -run '^TestModel$$' ./internal/jobs/
	$(GO) test -count=1 ./infra/

## test-faults: the fault matrix at full size (100,000 objects; make test runs it at 1,200)
test-faults:
	S3REKEY_FAULT_OBJECTS=$${S3REKEY_FAULT_OBJECTS:-100000} $(GO) test -count=1 -timeout 60m -run '^TestFaultMatrix$$' -v ./internal/demo/

## soak: the job protocol's model-based test over many more schedules
## (SCHEDULES, default 20,000, from seed SEED, default 1); make test runs
## it within 40 s (at least 300 schedules and up to 5,000, as many as the
## machine runs in that time; and 150 under the race detector)
soak:
	S3REKEY_SCHEDULES=$${SCHEDULES:-20000} S3REKEY_SEED=$${SEED:-1} $(GO) test -count=1 -timeout 0 -run '^TestModel$$' ./internal/jobs/

## fuzz: every fuzz target for FUZZTIME each (their seed corpora run in make test)
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

## lint: no tracked file over 1 MB (binaries do not belong in git); gofmt, go vet and staticcheck clean
lint:
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print $$2}'); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MB (build outputs belong in .gitignore):"; echo "$$big"; exit 1; fi
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './cdk.out/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## demo: the pipeline on the embedded emulator; no AWS account needed
demo:
	$(GO) run ./cmd/s3rekey demo

## demo-org: the organization demo: three member accounts, one enrolled mid-run, central reports checked
demo-org:
	$(GO) run ./cmd/s3rekey demo --org

## bench: every benchmark once per size (BENCHTIME=5s for steadier numbers)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## synth: the CloudFormation templates, no AWS credentials needed: cdk.json's (one account's, or
## with an organization config the organization's) in cdk.out, and the organization example's
## (organization.example.json, on one line: the CDK CLI cuts a context value at a newline) in
## cdk.out/organization, each checked to be there: the organization stack, the member stack, and
## what the code buckets receive (org-assets/)
synth: build node_modules/.package-lock.json
	$(CDK) synth --quiet -o cdk.out
	@ls cdk.out/*.template.json
	$(CDK) synth --quiet -o cdk.out/organization -c s3rekey="$$(tr -d '\n' < organization.example.json)"
	@for t in S3RekeyOrganization S3RekeyMember; do \
		test -s cdk.out/organization/$$t.template.json || { echo "synth: no $$t template"; exit 1; }; \
	done
	@ls cdk.out/organization/*.template.json cdk.out/organization/org-assets/s3rekey/member-*.template.json

## deploy: build, then deploy with the config in cdk.json to the account of your AWS credentials
deploy: build node_modules/.package-lock.json
	$(CDK) deploy

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

clean:
	rm -rf build cdk.out
