// Package ssm emulates the parameters of AWS Systems Manager Parameter
// Store in the AWS JSON 1.1 protocol: GetParameter, PutParameter (String
// parameters, Overwrite) and DeleteParameter, with the errors the Systems
// Manager API reference documents (ParameterNotFound, ParameterAlreadyExists,
// both HTTP 400).
package ssm

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// TargetPrefix is the X-Amz-Target prefix of SSM requests.
const TargetPrefix = "AmazonSSM."

// ErrorCodes: SSM sends no query-compatible error codes.
var ErrorCodes core.QueryErrorCodes

// maxNameLength is GetParameter's and PutParameter's limit on Name (API
// reference: "Maximum length of 2048").
const maxNameLength = 2048

type parameter struct {
	name, typ, value string
	version          int64
	modified         time.Time
}

// Service is one account's parameters. Parameters are regional (Systems
// Manager User Guide, "AWS Systems Manager Parameter Store": a parameter
// lives in the Region it was created in), so each region a request is
// signed for has its own, empty until written: a deployment record
// published in one region is not found in another. It is safe for
// concurrent use.
type Service struct {
	account, home string

	mu     sync.RWMutex
	params map[string]map[string]*parameter // by region, then name as given
}

// New makes the parameter store of an account whose default region is
// home (for requests that name none).
func New(account, home string) *Service {
	return &Service{account: account, home: home, params: map[string]map[string]*parameter{}}
}

// Region is the parameter store of one region of the account.
type Region struct {
	s      *Service
	region string
}

// In is the account's parameter store in region ("" is the home region).
func (s *Service) In(region string) Region {
	if region == "" {
		region = s.home
	}
	return Region{s: s, region: region}
}

// ARN is a parameter's ARN: the name without its leading slash after
// "parameter/" (API reference, GetParameter's sample response; Systems
// Manager User Guide, "Working with parameter hierarchies").
func (s Region) ARN(name string) string {
	return "arn:aws:ssm:" + s.region + ":" + s.s.account + ":parameter/" + strings.TrimPrefix(name, "/")
}

type request struct {
	Name      string
	Value     string
	Type      string
	Overwrite bool
}

// Permission is the IAM action of a request and the parameter it names.
func (s Region) Permission(op string, body []byte) (action, resource string, context map[string][]string) {
	var in request
	_ = json.Unmarshal(body, &in)
	return "ssm:" + op, s.ARN(s.localName(strings.TrimSpace(in.Name))), nil
}

// localName is the parameter a name or an ARN of this account and region
// names ("For parameters shared with you from another account, you must
// use the full ARN").
func (s Region) localName(ref string) string {
	prefix := "arn:aws:ssm:" + s.region + ":" + s.s.account + ":parameter"
	if rest, ok := strings.CutPrefix(ref, prefix); ok {
		// A name with a leading slash has it in the ARN once only.
		if strings.Count(rest, "/") > 1 {
			return rest
		}
		return strings.TrimPrefix(rest, "/")
	}
	return ref
}

// Dispatch serves one operation.
func (s Region) Dispatch(_ *http.Request, op string, body []byte) (any, *core.Error) {
	var in request
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	// "The service removes any spaces specified for the beginning or end
	// of a parameter name" (GetParameter).
	name := s.localName(strings.TrimSpace(in.Name))
	if err := validName(name); err != nil {
		return nil, err
	}
	switch op {
	case "GetParameter":
		return s.get(name)
	case "PutParameter":
		return s.put(name, in)
	case "DeleteParameter":
		return s.delete(name)
	}
	return nil, core.Errorf(http.StatusBadRequest, "InvalidAction", "operation "+op+" is not supported")
}

func validName(name string) *core.Error {
	switch {
	case name == "" || len(name) > maxNameLength:
		return validation("Parameter name must be between 1 and 2048 characters.")
	case strings.ContainsAny(name, " \t\n"):
		return validation("Parameter name can't contain spaces.")
	}
	return nil
}

func validation(msg string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "ValidationException", msg)
}

func notFound() *core.Error {
	return core.Errorf(http.StatusBadRequest, "ParameterNotFound", "")
}

func (s Region) get(name string) (any, *core.Error) {
	s.s.mu.RLock()
	defer s.s.mu.RUnlock()
	p, ok := s.s.params[s.region][name]
	if !ok {
		return nil, notFound()
	}
	return map[string]any{"Parameter": map[string]any{
		"ARN": s.ARN(p.name), "DataType": "text", "LastModifiedDate": float64(p.modified.UnixMilli()) / 1000,
		"Name": p.name, "Type": p.typ, "Value": p.value, "Version": p.version,
	}}, nil
}

// put stores a String parameter: a new one at version 1, an existing one
// only with Overwrite (PutParameter: ParameterAlreadyExists otherwise),
// one version up.
func (s Region) put(name string, in request) (any, *core.Error) {
	if in.Value == "" {
		return nil, validation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	params := s.s.params[s.region]
	if params == nil {
		params = map[string]*parameter{}
		s.s.params[s.region] = params
	}
	p, exists := params[name]
	switch {
	case exists && !in.Overwrite:
		return nil, core.Errorf(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	case !exists && in.Type == "":
		return nil, validation("A parameter type is required when you create a parameter.")
	case in.Type != "" && in.Type != "String":
		return nil, validation("Parameter type " + in.Type + " is not supported here: only String parameters are modelled.")
	case !exists:
		p = &parameter{name: name, typ: "String"}
		params[name] = p
	}
	p.value = in.Value
	p.version++
	p.modified = time.Now().UTC()
	return map[string]any{"Tier": "Standard", "Version": p.version}, nil
}

func (s Region) delete(name string) (any, *core.Error) {
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	if _, ok := s.s.params[s.region][name]; !ok {
		return nil, notFound()
	}
	delete(s.s.params[s.region], name)
	return struct{}{}, nil
}
