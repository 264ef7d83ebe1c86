package dynamodb

import (
	"math/big"
	"slices"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// An UpdateExpression: SET, REMOVE, ADD and DELETE clauses, each at most
// once, each naming paths that no other action names.

type setValue struct {
	op          string // "", "+" or "-"
	left, right setOperand
}

type setOperand struct {
	operand
	ifNotExists *[2]setOperand // if_not_exists(path, value)
	listAppend  *[2]setOperand
}

type updateAction struct {
	clause string // SET, REMOVE, ADD, DELETE
	path   path
	set    setValue
	value  operand // ADD and DELETE
}

func parseUpdate(src string, ctx *exprContext) ([]updateAction, *core.Error) {
	p, err := newParser(src, ctx)
	if err != nil {
		return nil, err
	}
	var out []updateAction
	seen := map[string]bool{}
	for p.peek().kind != "eof" {
		t := p.next()
		clause := strings.ToUpper(t.text)
		if t.kind != "ident" || (clause != "SET" && clause != "REMOVE" && clause != "ADD" && clause != "DELETE") {
			return nil, syntaxError(src, t.pos)
		}
		if seen[clause] {
			return nil, validation("Invalid UpdateExpression: The \"" + clause + "\" section can only be used once in an update expression;")
		}
		seen[clause] = true
		for {
			pth, err := p.parsePath()
			if err != nil {
				return nil, err
			}
			a := updateAction{clause: clause, path: pth}
			switch clause {
			case "SET":
				if _, err := p.expect("="); err != nil {
					return nil, err
				}
				if a.set, err = p.parseSetValue(); err != nil {
					return nil, err
				}
			case "ADD", "DELETE":
				if a.value, err = p.parseOperand(); err != nil {
					return nil, err
				}
				if a.value.value == nil {
					return nil, syntaxError(src, p.peek().pos)
				}
			}
			out = append(out, a)
			if p.peek().kind != "," {
				break
			}
			p.next()
		}
	}
	if len(out) == 0 {
		return nil, validation("Invalid UpdateExpression: The expression can not be empty;")
	}
	for i := range out {
		for j := range i {
			if overlaps(out[i].path, out[j].path) {
				return nil, validation("Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [" +
					out[j].path.String() + "], path two: [" + out[i].path.String() + "]")
			}
		}
	}
	return out, nil
}

func overlaps(a, b path) bool {
	n := min(len(a), len(b))
	return slices.Equal(a[:n], b[:n])
}

func (p *parser) parseSetValue() (setValue, *core.Error) {
	l, err := p.parseSetOperand()
	if err != nil {
		return setValue{}, err
	}
	if k := p.peek().kind; k == "+" || k == "-" {
		p.next()
		r, err := p.parseSetOperand()
		return setValue{op: k, left: l, right: r}, err
	}
	return setValue{left: l}, nil
}

func (p *parser) parseSetOperand() (setOperand, *core.Error) {
	if fn, ok := p.call("if_not_exists", "list_append"); ok {
		a, err := p.parseSetOperand()
		if err != nil {
			return setOperand{}, err
		}
		if _, err := p.expect(","); err != nil {
			return setOperand{}, err
		}
		b, err := p.parseSetOperand()
		if err != nil {
			return setOperand{}, err
		}
		if _, err := p.expect(")"); err != nil {
			return setOperand{}, err
		}
		pair := &[2]setOperand{a, b}
		if fn == "if_not_exists" {
			if a.path == nil || a.size {
				return setOperand{}, validation("Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists")
			}
			return setOperand{ifNotExists: pair}, nil
		}
		return setOperand{listAppend: pair}, nil
	}
	o, err := p.parseOperand()
	return setOperand{operand: o}, err
}

func (o setOperand) eval(it Item) (*Value, *core.Error) {
	switch {
	case o.ifNotExists != nil:
		if v := o.ifNotExists[0].path.resolve(it); v != nil {
			return v, nil
		}
		return o.ifNotExists[1].eval(it)
	case o.listAppend != nil:
		a, err := o.listAppend[0].eval(it)
		if err != nil {
			return nil, err
		}
		b, err := o.listAppend[1].eval(it)
		if err != nil {
			return nil, err
		}
		if a.kind() != "L" || b.kind() != "L" {
			return nil, validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append")
		}
		return &Value{L: append(slices.Clone(a.L), b.L...)}, nil
	}
	v := o.operand.eval(it)
	if v == nil {
		return nil, validation("The provided expression refers to an attribute that does not exist in the item")
	}
	return v, nil
}

// apply runs the actions on a copy of it, evaluating every operand
// against the item as it was before the update.
func applyUpdate(actions []updateAction, before Item) (Item, *core.Error) {
	after := before.clone()
	if after == nil {
		after = Item{}
	}
	for _, a := range actions {
		var err *core.Error
		switch a.clause {
		case "SET":
			var v *Value
			if v, err = a.set.eval(before); err == nil {
				err = setPath(after, a.path, v.clone())
			}
		case "REMOVE":
			removePath(after, a.path)
		case "ADD":
			err = addPath(after, a.path, a.value.value)
		case "DELETE":
			err = deleteFromSet(after, a.path, a.value.value)
		}
		if err != nil {
			return nil, err
		}
	}
	return after, nil
}

func (s setValue) eval(it Item) (*Value, *core.Error) {
	l, err := s.left.eval(it)
	if err != nil || s.op == "" {
		return l, err
	}
	r, err := s.right.eval(it)
	if err != nil {
		return nil, err
	}
	if l.kind() != "N" || r.kind() != "N" {
		return nil, validation("An operand in the update expression has an incorrect data type")
	}
	x, _ := parseNumber(*l.N)
	y, _ := parseNumber(*r.N)
	if s.op == "+" {
		return numberValue(new(big.Rat).Add(x, y)), nil
	}
	return numberValue(new(big.Rat).Sub(x, y)), nil
}

var invalidPath = validation("The document path provided in the update expression is invalid for update")

// parentOf finds the container of a path's last element, which must
// exist: DynamoDB makes top-level attributes, never intermediate maps.
func parentOf(it Item, p path) (*Value, *core.Error) {
	if len(p) == 1 {
		return nil, nil
	}
	parent := p[:len(p)-1].resolve(it)
	last := p[len(p)-1]
	if parent == nil || (last.index >= 0 && parent.L == nil) || (last.index < 0 && parent.M == nil) {
		return nil, invalidPath
	}
	return parent, nil
}

func setPath(it Item, p path, v *Value) *core.Error {
	parent, err := parentOf(it, p)
	if err != nil {
		return err
	}
	last := p[len(p)-1]
	switch {
	case parent == nil:
		it[last.name] = v
	case last.index >= 0:
		if last.index >= len(parent.L) {
			parent.L = append(parent.L, v)
		} else {
			parent.L[last.index] = v
		}
	default:
		parent.M[last.name] = v
	}
	return nil
}

func removePath(it Item, p path) {
	if len(p) == 1 {
		delete(it, p[0].name)
		return
	}
	parent := p[:len(p)-1].resolve(it)
	last := p[len(p)-1]
	switch {
	case parent == nil:
	case last.index >= 0 && parent.L != nil && last.index < len(parent.L):
		parent.L = slices.Delete(parent.L, last.index, last.index+1)
	case last.index < 0 && parent.M != nil:
		delete(parent.M, last.name)
	}
}

func addPath(it Item, p path, v *Value) *core.Error {
	cur := p.resolve(it)
	switch {
	case v.kind() == "N" && cur == nil:
		return setPath(it, p, v.clone())
	case v.kind() == "N" && cur.kind() == "N":
		x, _ := parseNumber(*cur.N)
		y, _ := parseNumber(*v.N)
		return setPath(it, p, numberValue(new(big.Rat).Add(x, y)))
	case (v.kind() == "SS" || v.kind() == "NS" || v.kind() == "BS") && cur == nil:
		return setPath(it, p, v.clone())
	case v.kind() == "SS" && cur.kind() == "SS":
		for _, s := range v.SS {
			if !slices.Contains(cur.SS, s) {
				cur.SS = append(cur.SS, s)
			}
		}
		return nil
	case v.kind() == "NS" && cur.kind() == "NS":
		for _, s := range v.NS {
			if !containsNumber(cur.NS, s) {
				cur.NS = append(cur.NS, s)
			}
		}
		return nil
	}
	return validation("An operand in the update expression has an incorrect data type")
}

func deleteFromSet(it Item, p path, v *Value) *core.Error {
	cur := p.resolve(it)
	if cur == nil {
		return nil
	}
	switch {
	case v.kind() == "SS" && cur.kind() == "SS":
		cur.SS = slices.DeleteFunc(cur.SS, func(s string) bool { return slices.Contains(v.SS, s) })
		if len(cur.SS) == 0 {
			removePath(it, p)
		}
		return nil
	case v.kind() == "NS" && cur.kind() == "NS":
		cur.NS = slices.DeleteFunc(cur.NS, func(s string) bool { return containsNumber(v.NS, s) })
		if len(cur.NS) == 0 {
			removePath(it, p)
		}
		return nil
	}
	return validation("An operand in the update expression has an incorrect data type")
}
