package emulator

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
)

// apiError is an AWS error answer, in whichever protocol the service speaks.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Header holds extra response headers (for example x-amz-delete-marker).
	Header map[string]string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

const (
	sqsTargetPrefix = "AmazonSQS."
	kmsTargetPrefix = "TrentService."
	maxJSONBody     = 2 << 20
)

// sigV4Scope is what the emulator reads of a request's signature: the
// credential scope. The signature is not verified.
type sigV4Scope struct {
	AccessKey, Date, Region, Service string
}

// parseSigV4 reads the credential scope of a SigV4 Authorization header or
// presigned query. ok is false for unsigned, SigV2 or malformed requests.
func parseSigV4(r *http.Request) (sigV4Scope, bool) {
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		rest, found := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
		if !found {
			return sigV4Scope{}, false
		}
		for part := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				cred = v
			}
		}
		if !strings.Contains(rest, "Signature=") {
			return sigV4Scope{}, false
		}
	} else if r.URL.Query().Get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	f := strings.Split(cred, "/")
	if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" {
		return sigV4Scope{}, false
	}
	return sigV4Scope{AccessKey: f[0], Date: f[1], Region: f[2], Service: f[3]}, true
}

// jsonErrorCodes maps an error code to its query-compatible code and fault
// for the X-Amzn-Query-Error header; nil for services without one.
type jsonErrorCodes map[string]string

// jsonHandler serves one JSON-protocol operation.
type jsonHandler func(r *http.Request, op string, body []byte) (any, *apiError)

// serveJSON serves an AWS JSON 1.0/1.1 request: SigV4 check, fault
// injection, counting, dispatch and the error shape the SDK reads.
func (e *Emulator) serveJSON(w http.ResponseWriter, r *http.Request, service, op string, dispatch jsonHandler, queryCodes jsonErrorCodes) {
	if r.Method != http.MethodPost {
		writeJSONError(w, http.StatusMethodNotAllowed, "InvalidAction", "JSON protocol requests use POST", queryCodes)
		return
	}
	if _, ok := parseSigV4(r); !ok {
		writeJSONError(w, http.StatusBadRequest, "MissingAuthenticationTokenException",
			"Request is missing Authentication Token", queryCodes)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidRequest", "reading body: "+err.Error(), queryCodes)
		return
	}
	if len(body) > maxJSONBody {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request body too large", queryCodes)
		return
	}
	fault, err := e.before(r.Context(), service, op, "")
	if err != nil {
		return // client went away during injected latency
	}
	if fault != nil {
		writeJSONError(w, fault.Status, fault.Code, fault.Message, queryCodes)
		return
	}
	out, apiErr := dispatch(r, op, body)
	if apiErr != nil {
		writeJSONError(w, apiErr.Status, apiErr.Code, apiErr.Message, queryCodes)
		return
	}
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.Header().Set("X-Amzn-Requestid", newID(16))
	if out == nil {
		out = struct{}{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string, queryCodes jsonErrorCodes) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", newID(16))
	if q, ok := queryCodes[code]; ok {
		w.Header().Set("X-Amzn-Query-Error", q)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// decodeJSON decodes a request body strictly enough to catch type errors.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "SerializationException", "cannot decode request: "+err.Error())
	}
	return nil
}

// xmlError is S3's error document.
type xmlError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
}

func writeS3Error(w http.ResponseWriter, r *http.Request, e *apiError) {
	for k, v := range e.Header {
		w.Header().Set(k, v)
	}
	id := newID(8)
	w.Header().Set("x-amz-request-id", id)
	if r.Method == http.MethodHead {
		// HEAD answers carry no body; the SDK reads the status alone.
		w.WriteHeader(e.Status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(xmlError{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: id, HostID: id})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", newID(8))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

// readXML decodes a request body of at most limit bytes into v.
func readXML(r *http.Request, limit int64, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "IncompleteBody", "reading body: "+err.Error())
	}
	if int64(len(body)) > limit {
		return errorf(http.StatusBadRequest, "MaxMessageLengthExceeded", "request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "MissingRequestBodyError", "Request Body is empty")
	}
	if err := xml.Unmarshal(body, v); err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return errorf(http.StatusBadRequest, "MalformedXML",
				"The XML you provided was not well-formed or did not validate against our published schema")
		}
		return errorf(http.StatusBadRequest, "MalformedXML", err.Error())
	}
	return nil
}
