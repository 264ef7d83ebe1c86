// Package lambdamain is the cold start every s3rekey function shares: JSON
// logs through lambdacontext, the policy from the environment, the AWS
// configuration, then lambda.Start with the handler the function builds.
// A configuration error ends the cold start with a log line naming it.
package lambdamain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/buckettags"
	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// Build makes a function's handler from the shared configuration: the
// policy as configured, and keys, the policy with its KMS aliases resolved
// (and re-resolved every few minutes).
type Build func(awsCfg aws.Config, pol *policy.Policy, keys policy.Source, logger *slog.Logger) (handler any, err error)

// Start runs the cold start and serves the handler; it does not return.
// The policy's KMS aliases stay unresolved (keys is the policy as
// configured): for functions that never compare keys.
func Start(build Build) { start(build, false) }

// StartResolvingKeys is Start for a function that compares keys: the
// policy's aliases are resolved and its targets checked at cold start (an
// alias that does not resolve, an untrusted key or an unusable target stops
// it, named) and every few minutes after.
func StartResolvingKeys(build Build) { start(build, true) }

func start(build Build, resolveKeys bool) {
	logger := lambdacontext.NewLogger()
	fail := func(what string, err error) {
		logger.Error("cold start: "+what, "error", err)
		os.Exit(1)
	}
	pol, err := policy.FromEnv()
	if err != nil {
		fail("invalid policy", err)
	}
	awsCfg, err := awsconf.Load(context.Background(), "")
	if err != nil {
		fail("AWS configuration", err)
	}
	// Tag selectors read bucket tags once per bucket per few minutes.
	pol = buckettags.Attach(pol, s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg)))
	keys := policy.Static(pol)
	if resolveKeys {
		if keys, err = resolvedKeys(context.Background(), kms.NewFromConfig(awsCfg), pol); err != nil {
			fail("KMS alias", err)
		}
	}
	handler, err := build(awsCfg, pol, keys, logger)
	if err != nil {
		fail("invalid configuration", err)
	}
	lambda.Start(handler)
}

// resolvedKeys resolves the policy's aliases and checks its targets now, so
// that an alias that does not resolve, an untrusted key, or a target that is
// disabled or pending deletion stops the cold start naming it.
func resolvedKeys(ctx context.Context, api keyalias.DescribeKeyAPI, pol *policy.Policy) (policy.Source, error) {
	return keyalias.NewResolver(ctx, api, pol)
}
