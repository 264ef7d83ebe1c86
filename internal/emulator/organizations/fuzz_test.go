package organizations

import "testing"

// FuzzDispatch: request bodies come from clients: any input is answered or
// refused, never a panic, and a page is never larger than MaxResults.
func FuzzDispatch(f *testing.F) {
	o := New("111122223333")
	ou, err := o.CreateUnit(o.RootID(), "pilot")
	if err != nil {
		f.Fatal(err)
	}
	for _, id := range []string{"222233334444", "333344445555"} {
		if err := o.AddAccount(id, "", ou); err != nil {
			f.Fatal(err)
		}
	}
	for _, op := range []string{"ListAccounts", "ListChildren", "ListAccountsForParent", "ListOrganizationalUnitsForParent", "ListParents", "DescribeAccount"} {
		f.Add(op, []byte(`{"ParentId":"`+ou+`","ChildType":"ACCOUNT","MaxResults":1,"NextToken":"page-1","ChildId":"222233334444","AccountId":"222233334444"}`))
	}
	f.Add("ListAccounts", []byte(`{"NextToken":"page-99999999999999999999"}`))
	f.Add("ListAccounts", []byte(`{"MaxResults":-1}`))
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		out, apiErr := o.Dispatch("111122223333", op, body)
		if apiErr != nil {
			return
		}
		if m, ok := out.(map[string]any); ok {
			if accounts, ok := m["Accounts"].([]any); ok && len(accounts) > maxResults {
				t.Fatalf("a page of %d accounts", len(accounts))
			}
		}
	})
}
