package ssm

import (
	"encoding/json"
	"testing"
)

// FuzzDispatch: request bodies come from any client: every body is an
// answer or an error, never a panic, and an answer is valid JSON.
func FuzzDispatch(f *testing.F) {
	f.Add("PutParameter", `{"Name":"/s3rekey/deployment","Value":"{}","Type":"String"}`)
	f.Add("GetParameter", `{"Name":"arn:aws:ssm:us-east-1:111122223333:parameter/s3rekey/deployment"}`)
	f.Add("DeleteParameter", `{"Name":" a b "}`)
	f.Add("PutParameter", `{"Name":"x","Value":"v","Overwrite":"yes"}`)
	f.Fuzz(func(t *testing.T, op, body string) {
		s := New("111122223333", "us-east-1").In("")
		for range 2 { // a second time meets what the first stored
			out, apiErr := s.Dispatch(nil, op, []byte(body))
			if apiErr != nil {
				continue
			}
			if _, err := json.Marshal(out); err != nil {
				t.Fatalf("%s %q: answer is not JSON: %v", op, body, err)
			}
		}
		s.Permission(op, []byte(body))
	})
}
