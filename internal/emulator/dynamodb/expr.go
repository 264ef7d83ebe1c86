package dynamodb

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// The expression language of ConditionExpression, KeyConditionExpression,
// FilterExpression and UpdateExpression (DynamoDB Developer Guide,
// "Expressions"): names as written or as #placeholders, values only as
// :placeholders, and every placeholder given must be used.

type token struct {
	kind string // "ident", "name" (#x), "value" (:x), "num", or the punctuation itself
	text string
	pos  int
}

func tokenize(s string) ([]token, *core.Error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || c == ':' || isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			kind := "ident"
			if c == '#' {
				kind = "name"
			} else if c == ':' {
				kind = "value"
			}
			if j == i+1 && kind != "ident" {
				return nil, syntaxError(s, i)
			}
			out = append(out, token{kind, s[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			out = append(out, token{"num", s[i:j], i})
			i = j
		case strings.HasPrefix(s[i:], "<>") || strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			out = append(out, token{s[i : i+2], s[i : i+2], i})
			i += 2
		case strings.ContainsRune("()[],.=<>+-", rune(c)):
			out = append(out, token{string(c), string(c), i})
			i++
		default:
			return nil, syntaxError(s, i)
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func syntaxError(s string, pos int) *core.Error {
	near := s[pos:]
	if len(near) > 20 {
		near = near[:20]
	}
	return validation(fmt.Sprintf("Invalid expression: Syntax error; token: %q, near: %q", near, s))
}

// exprContext resolves placeholders and records which were used.
type exprContext struct {
	names  map[string]string
	values map[string]*Value
	used   map[string]bool
}

func newExprContext(names map[string]string, values map[string]*Value) (*exprContext, *core.Error) {
	for k, v := range values {
		if !strings.HasPrefix(k, ":") {
			return nil, validation("ExpressionAttributeValues contains invalid key: Syntax error; key: \"" + k + "\"")
		}
		if err := v.check(); err != nil {
			return nil, validation("ExpressionAttributeValues contains invalid value: " + err.Message + " for key " + k)
		}
	}
	for k := range names {
		if !strings.HasPrefix(k, "#") {
			return nil, validation("ExpressionAttributeNames contains invalid key: Syntax error; key: \"" + k + "\"")
		}
	}
	return &exprContext{names: names, values: values, used: map[string]bool{}}, nil
}

// checkAllUsed is DynamoDB's refusal of unused placeholders.
func (c *exprContext) checkAllUsed() *core.Error {
	for k := range c.names {
		if !c.used[k] {
			return validation("Value provided in ExpressionAttributeNames unused in expressions: keys: {" + k + "}")
		}
	}
	for k := range c.values {
		if !c.used[k] {
			return validation("Value provided in ExpressionAttributeValues unused in expressions: keys: {" + k + "}")
		}
	}
	return nil
}

// pathElem is one step of a document path: a map key, or a list index.
type pathElem struct {
	name  string
	index int // -1 for a name
}

type path []pathElem

func (p path) String() string {
	var b strings.Builder
	for i, e := range p {
		if e.index >= 0 {
			fmt.Fprintf(&b, "[%d]", e.index)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.name)
	}
	return b.String()
}

// resolve finds a path's value in an item (nil when absent).
func (p path) resolve(it Item) *Value {
	if len(p) == 0 {
		return nil
	}
	v := it[p[0].name]
	for _, e := range p[1:] {
		switch {
		case v == nil:
			return nil
		case e.index >= 0:
			if v.L == nil || e.index >= len(v.L) {
				return nil
			}
			v = v.L[e.index]
		default:
			if v.M == nil {
				return nil
			}
			v = v.M[e.name]
		}
	}
	return v
}

// parser reads one expression's tokens.
type parser struct {
	src  string
	toks []token
	i    int
	ctx  *exprContext
}

func newParser(src string, ctx *exprContext) (*parser, *core.Error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	return &parser{src: src, toks: toks, ctx: ctx}, nil
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: "eof", pos: len(p.src)}
}

func (p *parser) next() token { t := p.peek(); p.i++; return t }

func (p *parser) keyword(word string) bool {
	t := p.peek()
	if t.kind == "ident" && strings.EqualFold(t.text, word) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(kind string) (token, *core.Error) {
	t := p.next()
	if t.kind != kind {
		return t, syntaxError(p.src, min(t.pos, len(p.src)))
	}
	return t, nil
}

// call consumes "name(" when the next tokens are a call of one of names
// (any case), and returns the name in lower case.
func (p *parser) call(names ...string) (string, bool) {
	t := p.peek()
	name := strings.ToLower(t.text)
	if t.kind != "ident" || p.i+1 >= len(p.toks) || p.toks[p.i+1].kind != "(" || !slices.Contains(names, name) {
		return "", false
	}
	p.i += 2
	return name, true
}

func (p *parser) done() *core.Error {
	if t := p.peek(); t.kind != "eof" {
		return syntaxError(p.src, t.pos)
	}
	return nil
}

func (p *parser) pathName(t token) (string, *core.Error) {
	switch t.kind {
	case "name":
		n, ok := p.ctx.names[t.text]
		if !ok {
			return "", validation("Value provided in ExpressionAttributeNames unused in expressions: An expression attribute name used in the document path is not defined; attribute name: " + t.text)
		}
		p.ctx.used[t.text] = true
		return n, nil
	case "ident":
		if reserved[strings.ToUpper(t.text)] {
			return "", validation("Invalid expression: Attribute name is a reserved keyword; reserved keyword: " + t.text)
		}
		return t.text, nil
	}
	return "", syntaxError(p.src, t.pos)
}

func (p *parser) parsePath() (path, *core.Error) {
	name, err := p.pathName(p.next())
	if err != nil {
		return nil, err
	}
	out := path{{name: name, index: -1}}
	for {
		switch p.peek().kind {
		case ".":
			p.next()
			n, err := p.pathName(p.next())
			if err != nil {
				return nil, err
			}
			out = append(out, pathElem{name: n, index: -1})
		case "[":
			p.next()
			t, err := p.expect("num")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect("]"); err != nil {
				return nil, err
			}
			n, _ := strconv.Atoi(t.text)
			out = append(out, pathElem{index: n})
		default:
			return out, nil
		}
	}
}

// operand is a path, a :value or size(path).
type operand struct {
	path  path
	value *Value
	size  bool
}

func (o operand) eval(it Item) *Value {
	switch {
	case o.value != nil:
		return o.value
	case o.size:
		v := o.path.resolve(it)
		n := -1
		switch v.kind() {
		case "S":
			n = len(*v.S)
		case "B":
			n = len(v.B)
		case "M":
			n = len(v.M)
		case "L":
			n = len(v.L)
		case "SS":
			n = len(v.SS)
		case "NS":
			n = len(v.NS)
		case "BS":
			n = len(v.BS)
		}
		if n < 0 {
			return nil
		}
		return numberValue(new(big.Rat).SetInt64(int64(n)))
	}
	return o.path.resolve(it)
}

func (p *parser) parseOperand() (operand, *core.Error) {
	t := p.peek()
	if t.kind == "value" {
		p.next()
		v, ok := p.ctx.values[t.text]
		if !ok {
			return operand{}, validation("Invalid expression: An expression attribute value used in expression is not defined; attribute value: " + t.text)
		}
		p.ctx.used[t.text] = true
		return operand{value: v}, nil
	}
	if _, ok := p.call("size"); ok {
		pth, err := p.parsePath()
		if err != nil {
			return operand{}, err
		}
		if _, err := p.expect(")"); err != nil {
			return operand{}, err
		}
		return operand{path: pth, size: true}, nil
	}
	pth, err := p.parsePath()
	return operand{path: pth}, err
}

// cond is a parsed condition.
type cond interface{ eval(Item) bool }

type (
	andCond struct{ l, r cond }
	orCond  struct{ l, r cond }
	notCond struct{ c cond }
	cmpCond struct {
		op   string
		l, r operand
	}
	betweenCond struct{ v, lo, hi operand }
	inCond      struct {
		v    operand
		list []operand
	}
	funcCond struct {
		name string
		path path
		arg  operand
	}
)

func (c andCond) eval(it Item) bool { return c.l.eval(it) && c.r.eval(it) }
func (c orCond) eval(it Item) bool  { return c.l.eval(it) || c.r.eval(it) }
func (c notCond) eval(it Item) bool { return !c.c.eval(it) }

func (c cmpCond) eval(it Item) bool {
	l, r := c.l.eval(it), c.r.eval(it)
	switch c.op {
	case "=":
		return equal(l, r)
	case "<>":
		return l != nil && r != nil && !equal(l, r)
	}
	n, ok := compare(l, r)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	}
	return n >= 0
}

func (c betweenCond) eval(it Item) bool {
	v := c.v.eval(it)
	a, ok1 := compare(v, c.lo.eval(it))
	b, ok2 := compare(v, c.hi.eval(it))
	return ok1 && ok2 && a >= 0 && b <= 0
}

func (c inCond) eval(it Item) bool {
	v := c.v.eval(it)
	return slices.ContainsFunc(c.list, func(o operand) bool { return equal(v, o.eval(it)) })
}

func (c funcCond) eval(it Item) bool {
	v := c.path.resolve(it)
	switch c.name {
	case "attribute_exists":
		return v != nil
	case "attribute_not_exists":
		return v == nil
	case "attribute_type":
		t := c.arg.eval(it)
		return v != nil && t.kind() == "S" && v.kind() == *t.S
	case "begins_with":
		a := c.arg.eval(it)
		switch {
		case v.kind() == "S" && a.kind() == "S":
			return strings.HasPrefix(*v.S, *a.S)
		case v.kind() == "B" && a.kind() == "B":
			return len(v.B) >= len(a.B) && string(v.B[:len(a.B)]) == string(a.B)
		}
		return false
	case "contains":
		a := c.arg.eval(it)
		switch v.kind() {
		case "S":
			return a.kind() == "S" && strings.Contains(*v.S, *a.S)
		case "SS":
			return a.kind() == "S" && slices.Contains(v.SS, *a.S)
		case "NS":
			return a.kind() == "N" && containsNumber(v.NS, *a.N)
		case "L":
			return slices.ContainsFunc(v.L, func(e *Value) bool { return equal(e, a) })
		}
	}
	return false
}

// parseCondition reads a whole condition expression.
func parseCondition(src string, ctx *exprContext) (cond, *core.Error) {
	p, err := newParser(src, ctx)
	if err != nil {
		return nil, err
	}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	return c, p.done()
}

// chain reads operands joined left to right by a keyword.
func (p *parser) chain(word string, operand func() (cond, *core.Error), join func(l, r cond) cond) (cond, *core.Error) {
	l, err := operand()
	for err == nil && p.keyword(word) {
		var r cond
		if r, err = operand(); err == nil {
			l = join(l, r)
		}
	}
	return l, err
}

func (p *parser) or() (cond, *core.Error) {
	return p.chain("OR", p.and, func(l, r cond) cond { return orCond{l, r} })
}

func (p *parser) and() (cond, *core.Error) {
	return p.chain("AND", p.not, func(l, r cond) cond { return andCond{l, r} })
}

func (p *parser) not() (cond, *core.Error) {
	if p.keyword("NOT") {
		c, err := p.not()
		return notCond{c}, err
	}
	return p.primary()
}

// conditionFuncs are the condition functions and their arities.
var conditionFuncs = map[string]int{"attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2, "begins_with": 2, "contains": 2}

func (p *parser) primary() (cond, *core.Error) {
	t := p.peek()
	if t.kind == "(" {
		p.next()
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		_, err = p.expect(")")
		return c, err
	}
	if name, ok := p.call(slices.Collect(maps.Keys(conditionFuncs))...); ok {
		pth, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		fc := funcCond{name: name, path: pth}
		if conditionFuncs[name] == 2 {
			if _, err := p.expect(","); err != nil {
				return nil, err
			}
			if fc.arg, err = p.parseOperand(); err != nil {
				return nil, err
			}
		}
		_, err = p.expect(")")
		return fc, err
	}
	l, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	switch op := p.peek(); {
	case op.kind == "=" || op.kind == "<>" || op.kind == "<" || op.kind == "<=" || op.kind == ">" || op.kind == ">=":
		p.next()
		r, err := p.parseOperand()
		return cmpCond{op.kind, l, r}, err
	case p.keyword("BETWEEN"):
		lo, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if !p.keyword("AND") {
			return nil, syntaxError(p.src, p.peek().pos)
		}
		hi, err := p.parseOperand()
		if err == nil && lo.value != nil && hi.value != nil {
			// Bounds in the wrong order are refused, not read as an empty
			// range (a BETWEEN b AND c is b <= a <= c: API_Condition).
			if c, ok := compare(lo.value, hi.value); ok && c > 0 {
				return nil, validation("Invalid expression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound")
			}
		}
		return betweenCond{l, lo, hi}, err
	case p.keyword("IN"):
		if _, err := p.expect("("); err != nil {
			return nil, err
		}
		ic := inCond{v: l}
		for {
			o, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			ic.list = append(ic.list, o)
			if p.peek().kind != "," {
				break
			}
			p.next()
		}
		_, err := p.expect(")")
		return ic, err
	}
	return nil, syntaxError(p.src, min(p.peek().pos, len(p.src)))
}

// keyCondition is a Query's key condition: the partition key equal to a
// value, and optionally one condition on the sort key.
type keyCondition struct {
	pk     *Value
	sk     cond
	skName string
}

func parseKeyCondition(src string, ctx *exprContext, hashKey, rangeKey string) (keyCondition, *core.Error) {
	c, err := parseCondition(src, ctx)
	if err != nil {
		return keyCondition{}, err
	}
	var parts []cond
	var flatten func(cond) bool
	flatten = func(c cond) bool {
		if a, ok := c.(andCond); ok {
			return flatten(a.l) && flatten(a.r)
		}
		parts = append(parts, c)
		return true
	}
	flatten(c)
	var kc keyCondition
	for _, part := range parts {
		name, ok := keyConditionAttr(part)
		switch {
		case !ok:
			return kc, validation("Invalid operator used in KeyConditionExpression: " + src)
		case name == hashKey && kc.pk == nil:
			cmp, isEq := part.(cmpCond)
			if !isEq || cmp.op != "=" || cmp.r.value == nil {
				return kc, validation("Query key condition not supported")
			}
			kc.pk = cmp.r.value
		case name == rangeKey && rangeKey != "" && kc.sk == nil:
			kc.sk, kc.skName = part, name
		default:
			return kc, validation("Query condition missed key schema element: " + hashKey)
		}
	}
	if kc.pk == nil {
		return kc, validation("Query condition missed key schema element: " + hashKey)
	}
	return kc, nil
}

// keyConditionAttr is the key attribute a key-condition part is about,
// when the part has a form KeyConditionExpression allows.
func keyConditionAttr(c cond) (string, bool) {
	single := func(p path) (string, bool) { return p[0].name, len(p) == 1 }
	switch c := c.(type) {
	case cmpCond:
		if c.op == "<>" || c.l.path == nil || c.l.size || c.r.value == nil {
			return "", false
		}
		return single(c.l.path)
	case betweenCond:
		if c.v.path == nil || c.lo.value == nil || c.hi.value == nil {
			return "", false
		}
		return single(c.v.path)
	case funcCond:
		if c.name != "begins_with" || c.arg.value == nil {
			return "", false
		}
		return single(c.path)
	}
	return "", false
}
