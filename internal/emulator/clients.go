package emulator

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Dummy credentials: the emulator reads the SigV4 scope, not the secret.
const (
	AccessKeyID     = "AKIAEMULATOR0000TEST"
	SecretAccessKey = "emulator-secret-key-not-a-real-secret"
)

// AWSConfig returns an SDK configuration that sends every client to the
// emulator as AccessKeyID, an identity with no policy bound and so full
// access. The HTTP client is the SDK's default; callers that make hundreds
// of concurrent requests set their own.
func (e *Emulator) AWSConfig() aws.Config { return e.AWSConfigAs(AccessKeyID) }

// AWSConfigAs is AWSConfig signing as another access key, for example one
// bound to a function's policy with BindPolicy.
func (e *Emulator) AWSConfigAs(accessKeyID string) aws.Config {
	return aws.Config{
		Region:       e.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(e.URL()),
	}
}

// PathStyle is the S3 client option the emulator needs: it serves
// path-style requests only.
func PathStyle(o *s3.Options) { o.UsePathStyle = true }

// LegacyUnencrypted is a PutObject option that stores the object without
// encryption, through the emulator-only LegacyUnencryptedHeader.
func LegacyUnencrypted(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(LegacyUnencryptedHeader, "true"))
}
