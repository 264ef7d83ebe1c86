package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// TestAccountPolicyFromOwnAccount: the member whose account has a policy
// of its own reads it; every other account, and a deployment without the
// directory, reads the shared policy.
func TestAccountPolicyFromOwnAccount(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "policy.json")
	accounts := filepath.Join(dir, "accounts")
	if err := os.MkdirAll(accounts, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, key string) {
		doc := `{"buckets":{"data-bucket":{"kmsKeyArn":"` + key + `"}}}`
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(shared, "alias/s3rekey-target")
	write(filepath.Join(accounts, "111122223333.json"), "arn:aws:kms:us-east-1:111122223333:key/own")
	for name, tc := range map[string]struct{ dir, account, want string }{
		"an account with its own key":  {accounts, "111122223333", "arn:aws:kms:us-east-1:111122223333:key/own"},
		"an account added later":       {accounts, "444455556666", "alias/s3rekey-target"},
		"a single-account deployment":  {"", "111122223333", "alias/s3rekey-target"},
		"no account known to the code": {accounts, "", "alias/s3rekey-target"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvPolicyFile, shared)
			t.Setenv(EnvAccountPolicies, tc.dir)
			t.Setenv(bucketowner.EnvAccountID, tc.account)
			p, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if b, ok := p.Lookup("data-bucket"); !ok || b.KMSKeyARN != tc.want {
				t.Errorf("data-bucket's key %q, want %q", b.KMSKeyARN, tc.want)
			}
		})
	}
}
