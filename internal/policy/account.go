package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// EnvAccountPolicies names a directory of per-account policies, one
// ACCOUNT.json each: a member of an organization whose account has one
// reads it instead of S3REKEY_POLICY_FILE. Every account runs the same
// template (a StackSet's), so the account is known only at run time
// (bucketowner.EnvAccountID).
const EnvAccountPolicies = "S3REKEY_ACCOUNT_POLICIES"

// accountFile is the policy file of this account: its own in the
// EnvAccountPolicies directory when there is one, file otherwise.
func accountFile(file string) (string, error) {
	dir, account := os.Getenv(EnvAccountPolicies), os.Getenv(bucketowner.EnvAccountID)
	if dir == "" || account == "" {
		return file, nil
	}
	own := filepath.Join(dir, filepath.Base(account)+".json")
	_, err := os.Stat(own)
	switch {
	case err == nil:
		return own, nil
	case errors.Is(err, fs.ErrNotExist):
		return file, nil
	default:
		return "", fmt.Errorf("policy: %w", err)
	}
}
