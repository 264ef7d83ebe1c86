package emulator_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// SQS accepts #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF in a
// message body (API_SendMessage, MessageBody): U+FFFD is in, U+FFFE and
// U+FFFF are out.
func TestSQSMessageCharacters(t *testing.T) {
	e := start(t, emulator.Options{})
	url, _ := e.Queue(t, "chars", nil)
	for body, ok := range map[string]bool{"replacement \uFFFD": true, "tab\tcr\rlf\n": true, "\U0010FFFF": true, "\uE000": true,
		"nonchar \uFFFE": false, "nonchar \uFFFF": false, "ctl \x01": false} {
		_, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
		if (err == nil) != ok {
			t.Errorf("body %q: %v, want accepted %v", body, err, ok)
		}
		if !ok && apiCode(err) != "InvalidMessageContents" {
			t.Errorf("body %q refused as %q, want InvalidMessageContents", body, apiCode(err))
		}
	}
}

// Decrypt needs the encryption context the ciphertext was made with; any
// other (or none) is InvalidCiphertextException (KMS API_Decrypt, Errors;
// concepts: encryption context).
func TestKMSDecryptChecksEncryptionContext(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	key := e.Key(t)
	bound := map[string]string{"job": "j-1", "part": "3"}
	enc, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("secret"), EncryptionContext: bound})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]map[string]string{"none": nil, "another value": {"job": "j-1", "part": "4"},
		"a pair more": {"job": "j-1", "part": "3", "x": "y"}} {
		if _, err := e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: c}); apiCode(err) != "InvalidCiphertextException" {
			t.Errorf("Decrypt with %s context: %v, want InvalidCiphertextException", name, err)
		}
	}
	out, err := e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"part": "3", "job": "j-1"}})
	if err != nil || string(out.Plaintext) != "secret" {
		t.Errorf("Decrypt with the same context: %q %v", out.Plaintext, err)
	}
}
