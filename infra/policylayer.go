package main

import (
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// policyLayerPath is where Lambda mounts the policy layer's file: a
// layer's content is under /opt.
const policyLayerPath = "/opt/s3rekey/policy.json"

// policyLayer delivers the policy to the functions as a file of a Lambda
// layer, read once at cold start (S3REKEY_POLICY_FILE). Lambda allows 4 KB
// for all of a function's environment variables together, and about 25
// ordinary buckets fill that; a layer holds up to 250 MB unzipped with the
// function. The layer is a CDK asset: it changes only through a deploy,
// which publishes a new layer version and updates every function to it.
// One resource, whatever the policy's size; the template holds only the
// asset's hash, never the policy.
func (s *S3RekeyStack) policyLayer(cfg *Config) awslambda.ILayerVersion {
	dir, err := os.MkdirTemp("", "s3rekey-policy-")
	if err == nil {
		err = os.MkdirAll(filepath.Join(dir, "s3rekey"), 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "s3rekey", "policy.json"), cfg.PolicyJSON, 0o644)
	}
	if err == nil {
		err = s.writeAccountPolicies(dir, cfg)
	}
	if err != nil {
		// The synth cannot go on without the asset; CDK reports a panic
		// of construction as a synth error naming it.
		panic("s3rekey: write the policy layer: " + err.Error())
	}
	s.policyDir = dir
	return awslambda.NewLayerVersion(s.Stack, jsii.String("Policy"), &awslambda.LayerVersionProps{
		Code:                    s.code("Policy", dir),
		CompatibleArchitectures: &[]awslambda.Architecture{awslambda.Architecture_ARM_64()},
		Description:             jsii.String("s3rekey policy (" + policyLayerPath + ")"),
	})
}
