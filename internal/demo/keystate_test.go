package demo

import (
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/permissions"
)

// TestTargetKeyStateNeedsDescribeKey: the encrypt function reads its
// targets' key state (DescribeKey) before it sends anything for them, so
// without CheckTargetKeys' kms:DescribeKey the run does not bring its
// objects onto their key, while the deployed permissions do.
func TestTargetKeyStateNeedsDescribeKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the end-to-end scenario")
	}
	sc := newScenario(t, false)
	enc := permissions.Without(permissions.Encrypt(sc.res), "CheckTargetKeys", "kms:DescribeKey")
	if len(enc) == len(permissions.Encrypt(sc.res)) && !hasStatement(permissions.Encrypt(sc.res), "CheckTargetKeys") {
		t.Fatal("the scenario's encrypt policy has no CheckTargetKeys statement")
	}
	if problems := sc.run(t, enc, permissions.Planner(sc.res), 0, 10*time.Second); len(problems) == 0 {
		t.Error("the run succeeds without kms:DescribeKey on the target keys: the key state is not read")
	}
}

func hasStatement(stmts []permissions.Statement, sid string) bool {
	for _, st := range stmts {
		if st.Sid == sid {
			return true
		}
	}
	return false
}
