package emulator

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/awsconf"
)

// Dummy credentials: the emulator reads the SigV4 scope, not the secret.
const (
	AccessKeyID     = "AKIAEMULATOR0000TEST"
	SecretAccessKey = "emulator-secret-key-not-a-real-secret"
)

// AWSConfig returns an SDK configuration that sends every client to the
// emulator, with dummy static credentials and a connection pool sized for
// hundreds of concurrent requests to one host.
func (e *Emulator) AWSConfig() aws.Config {
	return aws.Config{
		Region:       e.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(e.URL()),
		HTTPClient:   awsconf.NewHTTPClient(),
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
