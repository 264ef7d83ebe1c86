package emulator_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

type env struct {
	*emutest.Env
	emu *emulator.Emulator
	s3  *s3.Client
	sqs *sqs.Client
	kms *kms.Client
	cfg aws.Config
}

func start(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	e := emutest.Start(t, opts)
	return &env{Env: e, emu: e.Emu, s3: e.S3, sqs: e.SQS, kms: e.KMS, cfg: e.Cfg}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// rawRequest sends a request the SDK cannot express (such as an invalid
// body), signed with the SDK's own SigV4 signer unless sign is false.
func (e *env) rawRequest(t *testing.T, method, path, body string, header map[string]string, sign bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.emu.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if sign {
		sum := sha256.Sum256([]byte(body))
		creds, _ := e.cfg.Credentials.Retrieve(context.Background())
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "s3", e.emu.Region(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func mustKey(t *testing.T, e *env) string { return e.Key(t) }

func mustBucket(t *testing.T, e *env, name string, lock bool) { e.Bucket(t, name, lock) }

func put(t *testing.T, e *env, in *s3.PutObjectInput, body string, opts ...func(*s3.Options)) *s3.PutObjectOutput {
	t.Helper()
	return e.Put(t, in, body, opts...)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func md5b64(b []byte) string {
	sum := md5.Sum(b)
	return b64(sum[:])
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
