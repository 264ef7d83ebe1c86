package sts

import (
	"encoding/xml"
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// The query protocol's answers (STS API reference, response elements).

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type assumeRoleResult struct {
	Credentials     credentials     `xml:"Credentials"`
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type callerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name         `xml:"GetCallerIdentityResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   callerIdentity   `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

// withRequestID stamps an answer with its namespace and request id.
func withRequestID(out any, id string) any {
	switch o := out.(type) {
	case assumeRoleResponse:
		o.Xmlns, o.Metadata.RequestID = Namespace, id
		return o
	case getCallerIdentityResponse:
		o.Xmlns, o.Metadata.RequestID = Namespace, id
		return o
	}
	return out
}

type queryError struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// writeError writes the query protocol's error document.
func writeError(w http.ResponseWriter, requestID string, e *core.Error) {
	doc := queryError{Xmlns: Namespace, RequestID: requestID}
	doc.Error.Type, doc.Error.Code, doc.Error.Message = "Sender", e.Code, e.Message
	if e.Status >= 500 {
		doc.Error.Type = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(doc)
}

// WriteError answers a query-protocol request with an error, for a caller
// the service never reaches (an unknown access key).
func WriteError(w http.ResponseWriter, e *core.Error) { writeError(w, core.NewUUID(), e) }
