package budget_test

import (
	"context"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// TestTableCountsCurrentMembersPerScope writes heartbeats into a jobs
// table made as the stack makes it, and reads back the members per scope:
// only records whose time has not passed count, and a member's new
// heartbeat replaces its old one.
// It runs against DynamoDB on each witness (the emulator and moto).
func TestTableCountsCurrentMembersPerScope(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) { tableCountsCurrentMembersPerScope(t, w) })
}

func tableCountsCurrentMembersPerScope(t *testing.T, w witness.Witness) {
	ctx := context.Background()
	name := witness.Name("jobs")
	if err := demo.CreateJobsTable(ctx, w.Cfg, name); err != nil {
		t.Fatal(err)
	}
	db := w.DynamoDB
	table := &budget.Table{Put: db, Query: db, Name: name}
	now := time.Unix(2e9, 0)
	beat := func(member string, until time.Time, scopes ...string) map[string]int {
		t.Helper()
		got, _, err := table.Beat(ctx, member, scopes, nil, until, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	beat("a", now.Add(10*time.Second), "kms", "bucket/x")
	beat("b", now.Add(10*time.Second), "bucket/x")
	beat("gone", now.Add(-time.Second), "kms", "bucket/x")
	got := beat("c", now.Add(10*time.Second), "kms", "bucket/y")
	want := map[string]int{"kms": 2, "bucket/x": 2, "bucket/y": 1}
	for scope, n := range want {
		if got[scope] != n {
			t.Errorf("%s: %d members, want %d (all: %v)", scope, got[scope], n, got)
		}
	}
	// a stops using the KMS budget.
	got = beat("a", now.Add(10*time.Second), "bucket/x")
	if got["kms"] != 1 || got["bucket/x"] != 2 {
		t.Errorf("after a's new heartbeat: %v, want kms 1 and bucket/x 2", got)
	}
}

// TestTableAddsUpRatesAhead: the heartbeats' rates ahead are added up per
// scope over the current records only.
// It runs against DynamoDB on each witness (the emulator and moto).
func TestTableAddsUpRatesAhead(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		ctx := context.Background()
		name := witness.Name("jobs")
		if err := demo.CreateJobsTable(ctx, w.Cfg, name); err != nil {
			t.Fatal(err)
		}
		table := &budget.Table{Put: w.DynamoDB, Query: w.DynamoDB, Name: name}
		now := time.Unix(2e9, 0)
		var sums map[string]float64
		for _, b := range []struct {
			member string
			until  time.Time
			ahead  map[string]float64
		}{
			{"a", now.Add(10 * time.Second), map[string]float64{"kms": 10.5}},
			{"gone", now.Add(-time.Second), map[string]float64{"kms": 100}},
			{"b", now.Add(10 * time.Second), map[string]float64{"kms": 5, "bucket/x": 2}},
		} {
			var err error
			if _, sums, err = table.Beat(ctx, b.member, []string{"ahead:kms"}, b.ahead, b.until, now); err != nil {
				t.Fatal(err)
			}
		}
		if sums["kms"] != 15.5 || sums["bucket/x"] != 2 || len(sums) != 2 {
			t.Errorf("rates ahead %v, want kms 15.5 and bucket/x 2", sums)
		}
	})
}
