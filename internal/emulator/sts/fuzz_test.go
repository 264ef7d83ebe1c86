package sts

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator/iam"
)

// FuzzServe: STS forms come from clients: any form is answered with a
// status and never a panic, and AssumeRole of a role that trusts no one
// never succeeds.
func FuzzServe(f *testing.F) {
	s := New()
	s.Caller = func(*http.Request) (iam.Caller, bool) {
		return iam.Caller{Account: "111122223333", ARN: iam.RootARN("111122223333"), UserID: "111122223333"}, true
	}
	if _, err := s.PutRole("222233334444", "closed", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole"}]}`), nil); err != nil {
		f.Fatal(err)
	}
	f.Add("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::222233334444:role/closed&RoleSessionName=s1&DurationSeconds=900")
	f.Add("Action=GetCallerIdentity&Version=2011-06-15")
	f.Add("Action=AssumeRole&RoleArn=%ZZ&DurationSeconds=99999999999999999999")
	f.Fuzz(func(t *testing.T, form string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code == http.StatusOK && strings.Contains(w.Body.String(), "AssumeRoleResponse") {
			t.Fatalf("a role that trusts no one was assumed: %s", form)
		}
	})
}
