package jobs_test

import (
	"context"
	"testing"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
)

// redriveMark is what s3rekey redrive does for each dead letter before it
// moves them: mark it redriven in its job.
func redriveMark(t testing.TB, s *jobs.Store, task messages.Task) {
	t.Helper()
	if err := s.Reopen(context.Background(), task.JobID, task.ID); err != nil {
		t.Fatal(err)
	}
}
