package budget_test

import (
	"testing"

	"github.com/s3rekey/s3rekey/internal/witness"
)

// The table tests run against moto too; moto stops after them.
func TestMain(m *testing.M) { witness.Main(m) }
