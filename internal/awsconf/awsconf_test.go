package awsconf

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestLoad(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_ENDPOINT_URL", "")
	cfg, err := Load(context.Background(), "http://127.0.0.1:4566")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:4566" || cfg.Region != "us-east-1" {
		t.Errorf("config endpoint %v region %s", cfg.BaseEndpoint, cfg.Region)
	}
	if got := cfg.Retryer().MaxAttempts(); got != MaxAttempts {
		t.Errorf("retryer allows %d attempts, want %d", got, MaxAttempts)
	}
	var o s3.Options
	S3Options(cfg)(&o)
	if !o.UsePathStyle {
		t.Error("an endpoint override must select path-style S3")
	}
	cfg.BaseEndpoint = nil
	o = s3.Options{}
	S3Options(cfg)(&o)
	if o.UsePathStyle {
		t.Error("real AWS must keep virtual-hosted S3")
	}
}
