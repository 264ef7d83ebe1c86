package organizations

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// The maximum page of the List operations (MaxResults: 1 to 20).
const maxResults = 20

type accountJSON struct {
	ID              string  `json:"Id"`
	Arn             string  `json:"Arn"`
	Email           string  `json:"Email"`
	Name            string  `json:"Name"`
	Status          string  `json:"Status"`
	State           string  `json:"State"`
	JoinedMethod    string  `json:"JoinedMethod"`
	JoinedTimestamp float64 `json:"JoinedTimestamp"`
}

type idType struct {
	ID   string `json:"Id"`
	Type string `json:"Type"`
}

// listInput is the input every operation here takes a part of.
type listInput struct {
	ParentID   string `json:"ParentId"`
	ChildID    string `json:"ChildId"`
	ChildType  string `json:"ChildType"`
	AccountID  string `json:"AccountId"`
	MaxResults *int   `json:"MaxResults"`
	NextToken  string `json:"NextToken"`
}

// Dispatch serves one operation called by an account.
func (o *Organization) Dispatch(caller, op string, body []byte) (any, *core.Error) {
	var in listInput
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if _, member := o.accounts[caller]; !member {
		return nil, notInUse()
	}
	if op == "DescribeOrganization" {
		return map[string]any{"Organization": map[string]any{
			"Id": o.id, "Arn": "arn:aws:organizations::" + o.management + ":organization/" + o.id, "FeatureSet": "ALL",
			"MasterAccountId": o.management, "MasterAccountArn": o.AccountARN(o.management),
			"MasterAccountEmail": o.accounts[o.management].Email, "AvailablePolicyTypes": []any{},
		}}, nil
	}
	if caller != o.management {
		return nil, accessDenied()
	}
	switch op {
	case "DescribeAccount":
		a, ok := o.accounts[in.AccountID]
		if !ok {
			return nil, core.Errorf(http.StatusBadRequest, "AccountNotFoundException",
				"You specified an account that doesn't exist.")
		}
		return map[string]any{"Account": o.accountJSON(a)}, nil
	case "ListAccounts":
		return o.pageOfAccounts(o.accountsLocked(""), in)
	case "ListAccountsForParent":
		if !o.parentExistsLocked(in.ParentID) {
			return nil, parentNotFound()
		}
		return o.pageOfAccounts(o.accountsLocked(in.ParentID), in)
	case "ListRoots":
		return map[string]any{"Roots": []any{map[string]any{"Id": o.rootID, "Arn": o.arn("root", o.rootID), "Name": "Root", "PolicyTypes": []any{}}}}, nil
	case "ListOrganizationalUnitsForParent":
		if !o.parentExistsLocked(in.ParentID) {
			return nil, parentNotFound()
		}
		units := o.unitsLocked(in.ParentID)
		return page(len(units), in, "OrganizationalUnits", func(i int) any {
			return map[string]any{"Id": units[i].ID, "Arn": o.arn("ou", units[i].ID), "Name": units[i].Name}
		})
	case "ListChildren":
		return o.listChildren(in)
	case "ListParents":
		return o.listParents(in)
	}
	return nil, core.Errorf(http.StatusBadRequest, "UnknownOperationException", "the emulator does not implement Organizations "+op)
}

func (o *Organization) accountJSON(a *Account) accountJSON {
	return accountJSON{ID: a.ID, Arn: o.AccountARN(a.ID), Email: a.Email, Name: a.Name, Status: "ACTIVE", State: "ACTIVE",
		JoinedMethod: "CREATED", JoinedTimestamp: float64(a.Joined.UnixMilli()) / 1000}
}

func (o *Organization) pageOfAccounts(accounts []*Account, in listInput) (any, *core.Error) {
	return page(len(accounts), in, "Accounts", func(i int) any { return o.accountJSON(accounts[i]) })
}

// listChildren lists the accounts or OUs directly under a parent.
func (o *Organization) listChildren(in listInput) (any, *core.Error) {
	if !o.parentExistsLocked(in.ParentID) {
		return nil, parentNotFound()
	}
	var ids []string
	switch in.ChildType {
	case "ACCOUNT":
		for _, a := range o.accountsLocked(in.ParentID) {
			ids = append(ids, a.ID)
		}
	case "ORGANIZATIONAL_UNIT":
		for _, u := range o.unitsLocked(in.ParentID) {
			ids = append(ids, u.ID)
		}
	default:
		return nil, core.Errorf(http.StatusBadRequest, "InvalidInputException", "ChildType must be ACCOUNT or ORGANIZATIONAL_UNIT")
	}
	return page(len(ids), in, "Children", func(i int) any { return idType{ID: ids[i], Type: in.ChildType} })
}

// listParents names the root or OU directly above an account or OU.
func (o *Organization) listParents(in listInput) (any, *core.Error) {
	parent := ""
	if a, ok := o.accounts[in.ChildID]; ok {
		parent = a.Parent
	} else if u, ok := o.units[in.ChildID]; ok {
		parent = u.Parent
	} else {
		return nil, core.Errorf(http.StatusBadRequest, "ChildNotFoundException", "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.")
	}
	kind := "ORGANIZATIONAL_UNIT"
	if parent == o.rootID {
		kind = "ROOT"
	}
	return map[string]any{"Parents": []idType{{ID: parent, Type: kind}}}, nil
}

func parentNotFound() *core.Error {
	return core.Errorf(http.StatusBadRequest, "ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
}

// page answers one page of n items under member, with a NextToken when
// more follow.
func page(n int, in listInput, member string, item func(i int) any) (any, *core.Error) {
	size := maxResults
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxResults {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidInputException", "MaxResults must be between 1 and 20")
		}
		size = *in.MaxResults
	}
	start := 0
	if in.NextToken != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, tokenPrefix))
		if err != nil || !strings.HasPrefix(in.NextToken, tokenPrefix) || v < 0 || v > n {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidInputException", "The provided NextToken value is not valid.")
		}
		start = v
	}
	end := min(start+size, n)
	items := make([]any, 0, end-start)
	for i := start; i < end; i++ {
		items = append(items, item(i))
	}
	out := map[string]any{member: items}
	if end < n {
		out["NextToken"] = tokenPrefix + strconv.Itoa(end)
	}
	return out, nil
}

const tokenPrefix = "page-"
