package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/messages"
)

// The deployment's task-signing key lives in one item of the jobs table,
// made on first use: only principals that can read the table (the stack's
// functions, and operators with read access to it) can sign a task.
const (
	secretPK   = "secret"
	secretSK   = "task-hmac"
	secretAttr = "k"
)

// keyring caches the signing key of one table.
type keyring struct {
	mu  sync.Mutex
	key []byte
}

// signingKey reads the table's key, making it when there is none yet: one
// UpdateItem whose if_not_exists keeps the first key ever written.
func (s *Store) signingKey(ctx context.Context) ([]byte, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.key != nil {
		return s.keys.key, nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	out, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(str(secretPK), secretSK),
		UpdateExpression:          aws.String("SET #k = if_not_exists(#k, :k)"),
		ExpressionAttributeNames:  map[string]string{"#k": secretAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberB{Value: fresh}},
		ReturnValues:              types.ReturnValueAllNew})
	if err != nil {
		return nil, fmt.Errorf("jobs table %s: task-signing key: %w", s.Table, err)
	}
	b, ok := out.Attributes[secretAttr].(*types.AttributeValueMemberB)
	if !ok || len(b.Value) < 16 {
		return nil, fmt.Errorf("jobs table %s: task-signing key is malformed", s.Table)
	}
	s.keys.key = b.Value
	return s.keys.key, nil
}

// taskMAC is the HMAC-SHA256 of a task's JSON without its signature.
func taskMAC(key []byte, t messages.Task) []byte {
	t.Sig, t.Version = "", messages.TaskVersion
	body, _ := json.Marshal(t) // a decoded or built task: plain data
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// Sign sets a tracked task's signature.
func (s *Store) Sign(ctx context.Context, t *messages.Task) error {
	k, err := s.signingKey(ctx)
	if err != nil {
		return err
	}
	t.Sig = hex.EncodeToString(taskMAC(k, *t))
	return nil
}

// Verify reports whether a tracked task was signed by this deployment. A
// task that is not (forged, or altered) must not change any job: its
// objects may still be run, as any sender of the work queue can ask.
func (s *Store) Verify(ctx context.Context, t messages.Task) (bool, error) {
	got, err := hex.DecodeString(t.Sig)
	if err != nil || len(got) != sha256.Size {
		return false, nil
	}
	k, err := s.signingKey(ctx)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, taskMAC(k, t)), nil
}
