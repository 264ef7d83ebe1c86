package main

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// queuePolicies makes the work, uploads and control queues refuse SendMessage
// (which SendMessageBatch is governed by) from every principal but the
// stack's encrypt and planner functions, the operators' roles
// (operatorRoleArns) and this stack's EventBridge rules; the control queue
// also takes the enroll function's (a new bucket's backfill). An explicit Deny in a queue policy wins over
// any identity policy that allows the send, so a principal of the account
// with sqs:SendMessage on "*" cannot put a task on any of them.
//
// The Deny applies only when both hold: the caller's role is none of
// those named (aws:PrincipalArn; absent for a service, which makes the
// negated test true) and the request does not come from one of the
// stack's rules (aws:SourceArn, which EventBridge sets to the rule's ARN;
// absent for a role). The rules' ARNs are matched by the stack's name,
// which CloudFormation puts first in every rule name it generates.
func (s *S3RekeyStack) queuePolicies(cfg *Config) {
	senders := []*string{s.Encrypt.Role().RoleArn(), s.Planner.Role().RoleArn()}
	for _, arn := range cfg.OperatorRoleArns {
		senders = append(senders, jsii.String(arn))
	}
	rules := awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("arn:"), awscdk.Aws_PARTITION(), jsii.String(":events:"),
		awscdk.Aws_REGION(), jsii.String(":"), awscdk.Aws_ACCOUNT_ID(), jsii.String(":rule/"), awscdk.Aws_STACK_NAME(), jsii.String("-*")})
	for _, x := range []struct {
		q       awssqs.Queue
		senders []*string
	}{{s.WorkQueue, senders}, {s.UploadsQueue, senders}, {s.ControlQueue, append(slices.Clone(senders), s.Enroll.Role().RoleArn())}} {
		q, senders := x.q, x.senders
		q.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("OnlyS3RekeySends"),
			Effect:     awsiam.Effect_DENY,
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings("sqs:SendMessage"),
			Resources:  &[]*string{q.QueueArn()},
			Conditions: &map[string]any{
				"ArnNotEquals": map[string]any{"aws:PrincipalArn": senders},
				"ArnNotLike":   map[string]any{"aws:SourceArn": rules},
			},
		}))
	}
}
