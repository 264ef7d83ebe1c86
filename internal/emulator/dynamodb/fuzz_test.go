package dynamodb

import "testing"

// FuzzExpressions: any expression text, with any placeholders, parses to
// a result or a ValidationException, never a panic, and what parses
// evaluates and applies without one.
func FuzzExpressions(f *testing.F) {
	for _, seed := range []string{"attribute_not_exists(#sk)", "#tok = :t AND attribute_exists(#c)", "n > :v OR NOT (a.b[0] BETWEEN :v AND :v)",
		"begins_with(sk, :v) AND size(m) >= :v", "SET #a = if_not_exists(#a, :v) + :v ADD n :v REMOVE m.x", "SET l = list_append(l, :l) DELETE s :s",
		"a IN (:v, :v)", "((", "SET", ":v = :v", "#a.#a[99999999999999999999]"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, sv := "1", "x"
		values := map[string]*Value{":v": {N: &n}, ":t": {S: &sv}, ":l": {L: []*Value{{N: &n}}}, ":s": {SS: []string{"x"}}}
		names := map[string]string{"#sk": "sk", "#tok": "tok", "#c": "c", "#a": "a"}
		item := Item{"a": {N: &n}, "m": {M: map[string]*Value{"x": {S: &sv}}}, "l": {L: []*Value{}}}
		if c, err := parseCondition(src, &exprContext{names: names, values: values, used: map[string]bool{}}); err == nil {
			c.eval(item)
		}
		if actions, err := parseUpdate(src, &exprContext{names: names, values: values, used: map[string]bool{}}); err == nil {
			_, _ = applyUpdate(actions, item)
		}
	})
}
