package keyalias_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/witness"
)

func TestMain(m *testing.M) { witness.Main(m) }

// Alias resolution against KMS itself, on each witness: DescribeKey on an
// alias gives its key's ARN (KMS API_DescribeKey: "To specify a KMS key,
// use its key ID, key ARN, alias name, or alias ARN"), an UpdateAlias is
// followed once the cache's TTL passes, and a missing alias is named.
func TestResolverAgainstKMS(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		ctx := context.Background()
		a, b := w.Key(t), w.Key(t)
		alias := "alias/" + witness.Name("app-data")
		if _, err := w.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(a)}); err != nil {
			t.Fatal(err)
		}
		pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"bkt":{"kmsKeyArn":%q}}}`, alias)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := keyalias.NewResolver(ctx, w.KMS, pol)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		r.Now = func() time.Time { return now }
		current := func() string {
			p, err := r.Current(ctx)
			if err != nil {
				t.Fatal(err)
			}
			bkt, _ := p.Lookup("bkt")
			return bkt.KMSKeyARN
		}
		if got := current(); got != a {
			t.Fatalf("%s resolved to %s, want %s", alias, got, a)
		}
		if _, err := w.KMS.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(keyalias.DefaultTTL + time.Second)
		if got := current(); got != b {
			t.Errorf("after UpdateAlias and the TTL: %s, want %s", got, b)
		}
		missing, _ := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"alias/` + witness.Name("missing") + `"}}}`))
		if _, err := keyalias.NewResolver(ctx, w.KMS, missing); err == nil || !strings.Contains(err.Error(), "alias/missing") {
			t.Errorf("a missing alias: %v, want an error naming it", err)
		}
	})
}
