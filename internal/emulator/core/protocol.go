package core

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Error is an AWS error answer, in whichever protocol the service speaks.
type Error struct {
	Status  int
	Code    string
	Message string
	// Header holds extra response headers (for example x-amz-delete-marker).
	Header map[string]string
	// Fields are extra members of a JSON error body (for example
	// DynamoDB's CancellationReasons).
	Fields map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func Errorf(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// MaxJSONBody is the largest JSON request body read.
const MaxJSONBody = 2 << 20

// Scope is what the emulator reads of a request's signature: the
// credential scope. The signature is not verified.
type Scope struct {
	AccessKey, Date, Region, Service string
}

// parseSigV4 reads the credential scope of a SigV4 Authorization header or
// presigned query. ok is false for unsigned, SigV2 or malformed requests.
func ParseSigV4(r *http.Request) (Scope, bool) {
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		rest, found := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
		if !found {
			return Scope{}, false
		}
		for part := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				cred = v
			}
		}
		if !strings.Contains(rest, "Signature=") {
			return Scope{}, false
		}
	} else if r.URL.Query().Get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	f := strings.Split(cred, "/")
	if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" {
		return Scope{}, false
	}
	return Scope{AccessKey: f[0], Date: f[1], Region: f[2], Service: f[3]}, true
}

// QueryErrorCodes maps an error code to its query-compatible code and fault
// for the X-Amzn-Query-Error header; nil for services without one.
type QueryErrorCodes map[string]string

// JSONHandler serves one JSON-protocol operation.
type JSONHandler func(r *http.Request, op string, body []byte) (any, *Error)

func WriteJSONError(w http.ResponseWriter, status int, code, msg string, queryCodes QueryErrorCodes) {
	WriteJSONErrorFields(w, &Error{Status: status, Code: code, Message: msg}, queryCodes)
}

// WriteJSONErrorFields writes a JSON error with the error's extra fields.
func WriteJSONErrorFields(w http.ResponseWriter, e *Error, queryCodes QueryErrorCodes) {
	body := map[string]any{"__type": e.Code, "message": e.Message}
	for k, v := range e.Fields {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", NewID(16))
	if q, ok := queryCodes[e.Code]; ok {
		w.Header().Set("X-Amzn-Query-Error", q)
	}
	writeJSONBody(w, e.Status, body)
}

// writeJSONBody writes a JSON answer with the X-Amz-Crc32 header
// DynamoDB puts on every answer (the SDK checks it when present).
func writeJSONBody(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteJSON writes a successful JSON answer.
func WriteJSON(w http.ResponseWriter, v any) { writeJSONBody(w, http.StatusOK, v) }

// decodeJSON decodes a request body strictly enough to catch type errors.
func DecodeJSON(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(http.StatusBadRequest, "SerializationException", "cannot decode request: "+err.Error())
	}
	return nil
}

// XMLError is S3's error document.
type XMLError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
}

// SetS3RequestIDs gives an S3 answer its x-amz-request-id and x-amz-id-2,
// as every S3 answer has them, once.
func SetS3RequestIDs(w http.ResponseWriter) (requestID, hostID string) {
	h := w.Header()
	if h.Get("x-amz-request-id") == "" {
		h.Set("x-amz-request-id", strings.ToUpper(NewID(8)))
		h.Set("x-amz-id-2", base64.StdEncoding.EncodeToString([]byte(NewID(24))))
	}
	return h.Get("x-amz-request-id"), h.Get("x-amz-id-2")
}

// WriteS3Error writes S3's XML error document (HEAD answers: the status
// alone).
func WriteS3Error(w http.ResponseWriter, r *http.Request, e *Error) {
	for k, v := range e.Header {
		w.Header().Set(k, v)
	}
	id, host := SetS3RequestIDs(w)
	if r.Method == http.MethodHead {
		// HEAD answers carry no body; the SDK reads the status alone.
		w.WriteHeader(e.Status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(XMLError{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: id, HostID: host})
}

// WriteXML writes an S3 XML answer.
func WriteXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	SetS3RequestIDs(w)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

// readXML decodes a request body of at most limit bytes into v.
func ReadXML(r *http.Request, limit int64, v any) *Error {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return Errorf(http.StatusBadRequest, "IncompleteBody", "reading body: "+err.Error())
	}
	if int64(len(body)) > limit {
		return Errorf(http.StatusBadRequest, "MaxMessageLengthExceeded", "request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(http.StatusBadRequest, "MissingRequestBodyError", "Request Body is empty")
	}
	if err := xml.Unmarshal(body, v); err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return Errorf(http.StatusBadRequest, "MalformedXML",
				"The XML you provided was not well-formed or did not validate against our published schema")
		}
		return Errorf(http.StatusBadRequest, "MalformedXML", err.Error())
	}
	return nil
}

// NewID returns n random bytes as lower-case hex.
func NewID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random version 4 UUID.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(out)
}
