package ownercheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const s3Import = "github.com/aws/aws-sdk-go-v2/service/s3"

// skipped are the trees whose S3 requests are not s3rekey's: the emulator
// answers requests, and the demo creates and fills the buckets it then
// works on (it owns them, in an emulator).
var skipped = []string{"internal/emulator", "internal/demo", "internal/ownercheck"}

// exempt are the requests that name no owner on purpose, by file and
// function, each with its reason.
var exempt = map[string]string{
	// Table files live in the S3 Tables warehouse behind a table bucket;
	// the AWS docs do not say which account S3 reports as that storage's
	// owner, and a wrong guess would refuse every read. The warehouse
	// location comes from the metadata configuration of a bucket read
	// with its owner named (metatable.Find).
	"internal/metatable/table.go read": "S3 Tables warehouse: owner undocumented",
}

// violation is an S3 input naming a bucket without an expected owner.
type violation struct{ pos, function, input string }

// missingOwners lists, in every non-test Go file under the roots, the
// s3.XxxInput composite literals that set Bucket but not
// ExpectedBucketOwner, unless the function assigns
// v.ExpectedBucketOwner to the variable the literal went into.
func missingOwners(t *testing.T, root string, dirs ...string) []violation {
	t.Helper()
	var out []violation
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			for _, s := range skipped {
				if d.IsDir() && filepath.ToSlash(rel) == s {
					return filepath.SkipDir
				}
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			for _, v := range fileViolations(fset, f) {
				if _, ok := exempt[filepath.ToSlash(rel)+" "+v.function]; !ok {
					out = append(out, v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func fileViolations(fset *token.FileSet, f *ast.File) []violation {
	name := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == s3Import {
			name = "s3"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return nil
	}
	var out []violation
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		assigned := ownerAssignments(fn.Body)
		intoVar := literalVariables(fn.Body)
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Input") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != name {
				return true
			}
			fields := map[string]bool{}
			for _, e := range lit.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok {
						fields[k.Name] = true
					}
				}
			}
			if !fields["Bucket"] || fields["ExpectedBucketOwner"] || assigned[intoVar[lit]] && intoVar[lit] != "" {
				return true
			}
			out = append(out, violation{pos: fset.Position(lit.Pos()).String(), function: fn.Name.Name, input: sel.Sel.Name})
			return true
		})
	}
	return out
}

// ownerAssignments are the variables v of `v.ExpectedBucketOwner = …`.
func ownerAssignments(body *ast.BlockStmt) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok {
			for _, l := range as.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "ExpectedBucketOwner" {
					if id, ok := sel.X.(*ast.Ident); ok {
						out[id.Name] = true
					}
				}
			}
		}
		return true
	})
	return out
}

// literalVariables maps each composite literal assigned to a variable
// (v := &s3.XInput{…}, v := s3.XInput{…}) to the variable's name.
func literalVariables(body *ast.BlockStmt) map[*ast.CompositeLit]string {
	out := map[*ast.CompositeLit]string{}
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != len(as.Rhs) {
			return true
		}
		for i, r := range as.Rhs {
			if u, ok := r.(*ast.UnaryExpr); ok {
				r = u.X
			}
			if lit, ok := r.(*ast.CompositeLit); ok {
				if id, ok := as.Lhs[i].(*ast.Ident); ok {
					out[lit] = id.Name
				}
			}
		}
		return true
	})
	return out
}

// TestEveryS3RequestNamesTheBucketOwner: no S3 request of the product
// names a bucket without ExpectedBucketOwner, whether the bucket is a
// managed one (its owner from the policy) or s3rekey's own inventory or
// report bucket (the deployment's account, or the configured owner):
// either can belong to another account by the time the request is sent.
func TestEveryS3RequestNamesTheBucketOwner(t *testing.T) {
	for _, v := range missingOwners(t, "../..", "internal", "cmd", "functions") {
		t.Errorf("%s: s3.%s names a Bucket without ExpectedBucketOwner", v.pos, v.input)
	}
	// An exemption names a request that still exists without an owner.
	for where := range exempt {
		file, function, _ := strings.Cut(where, " ")
		src, err := parser.ParseFile(token.NewFileSet(), filepath.Join("../..", file), nil, 0)
		if err != nil {
			t.Fatalf("exemption %s: %v", where, err)
		}
		found := false
		for _, v := range fileViolations(token.NewFileSet(), src) {
			found = found || v.function == function
		}
		if !found {
			t.Errorf("exemption %s names no request without an owner: remove it", where)
		}
	}
}

// TestCheckerFindsAMissingOwner: the checker itself finds a literal
// without the owner, accepts one with it, and accepts an owner assigned
// to the variable afterwards.
func TestCheckerFindsAMissingOwner(t *testing.T) {
	const src = `package p
import s3x "github.com/aws/aws-sdk-go-v2/service/s3"
func bad() { _ = &s3x.GetObjectInput{Bucket: nil, Key: nil} }
func good() { _ = &s3x.GetObjectInput{Bucket: nil, ExpectedBucketOwner: nil} }
func later() { in := &s3x.HeadObjectInput{Bucket: nil}; in.ExpectedBucketOwner = nil; _ = in }
func otherVar() { in := &s3x.HeadObjectInput{Bucket: nil}; out := &s3x.HeadObjectInput{}; out.ExpectedBucketOwner = nil; _, _ = in, out }
func noBucket() { _ = &s3x.ListBucketsInput{} }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := fileViolations(fset, f)
	if len(got) != 2 || !strings.HasPrefix(got[0].pos, "p.go:3:") || !strings.HasPrefix(got[1].pos, "p.go:6:") {
		t.Errorf("violations %+v, want those in bad and otherVar", got)
	}
}
