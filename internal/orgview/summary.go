package orgview

import (
	"fmt"
	"io"
	"strings"
)

// Adder is a view's per-deployment data that adds up into totals.
type Adder[T any] interface{ Add(T) T }

// Total adds up the view of every deployed row.
func Total[T Adder[T]](v *View[T]) T {
	var total T
	for _, r := range v.Rows {
		if r.View != nil {
			total = total.Add(*r.View)
		}
	}
	return total
}

// Flag is one account and region that needs attention, and why.
type Flag struct {
	Account string   `json:"account"`
	Name    string   `json:"name"`
	Region  string   `json:"region"`
	Reasons []string `json:"reasons"`
}

// Attention is every account and region that needs attention, by kind;
// each list is empty, not null, when none does.
type Attention struct {
	NotDeployed []Flag    `json:"notDeployed"`
	Unreadable  []Flag    `json:"unreadable"`
	Behind      []Flag    `json:"behind"`
	Failing     []Flag    `json:"failing"`
	Suspended   []Account `json:"suspended"`
}

// Any reports whether any account needs attention (suspended accounts
// are skipped, not flagged).
func (a Attention) Any() bool {
	return len(a.NotDeployed)+len(a.Unreadable)+len(a.Behind)+len(a.Failing) > 0
}

// AttentionOf sorts a view's rows into what needs attention.
func AttentionOf[T any](v *View[T]) Attention {
	a := Attention{NotDeployed: []Flag{}, Unreadable: []Flag{}, Behind: []Flag{}, Failing: []Flag{}, Suspended: v.Suspended}
	if a.Suspended == nil {
		a.Suspended = []Account{}
	}
	for _, r := range v.Rows {
		flag := func(reasons ...string) Flag {
			return Flag{Account: r.Account, Name: r.Name, Region: r.Region, Reasons: reasons}
		}
		switch r.State {
		case StateNotDeployed:
			a.NotDeployed = append(a.NotDeployed, flag(r.Reason))
		case StateUnreadable:
			a.Unreadable = append(a.Unreadable, flag(r.Reason))
		}
		if len(r.Behind) > 0 {
			a.Behind = append(a.Behind, flag(r.Behind...))
		}
		if len(r.Failing) > 0 {
			a.Failing = append(a.Failing, flag(r.Failing...))
		}
	}
	return a
}

// Write prints the sections of what needs attention after a view's
// table: nothing for an empty section.
func (a Attention) Write(w io.Writer) error {
	var b strings.Builder
	for _, s := range []struct {
		title string
		flags []Flag
	}{
		{"BEHIND", a.Behind},
		{"FAILING", a.Failing},
		{"NOT DEPLOYED", a.NotDeployed},
		{"UNREADABLE (deployed, but could not be read)", a.Unreadable},
	} {
		if len(s.flags) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %d\n", s.title, len(s.flags))
		for _, f := range s.flags {
			fmt.Fprintf(&b, "  %s %s (%s): %s\n", f.Account, f.Region, f.Name, strings.Join(f.Reasons, "; "))
		}
	}
	if len(a.Suspended) > 0 {
		fmt.Fprintf(&b, "\nSKIPPED (suspended or closed): %d\n", len(a.Suspended))
		for _, s := range a.Suspended {
			fmt.Fprintf(&b, "  %s (%s): %s\n", s.ID, s.Name, s.State)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
