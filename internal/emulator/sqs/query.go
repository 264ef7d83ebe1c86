package sqs

import (
	"encoding/json"
	"encoding/xml"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// SQS's query protocol (form-encoded Action=…&Version=2012-11-05, XML
// answers), which the AWS CLI before 2024, boto3 and other SDKs of that
// age speak. It is served by the same operations as AWS JSON 1.0: the form
// becomes the JSON input, and the JSON output becomes the XML answer
// (Amazon SQS Developer Guide, "Making query API requests").

// QueryNamespace is the query protocol's XML namespace.
const QueryNamespace = "http://queue.amazonaws.com/doc/2012-11-05/"

// numericParams are the parameters the JSON input carries as numbers.
var numericParams = map[string]bool{"MaxNumberOfMessages": true, "WaitTimeSeconds": true, "VisibilityTimeout": true,
	"DelaySeconds": true, "MaxResults": true, "MaxNumberOfMessagesPerSecond": true}

// listParams are the flattened lists of the query protocol and the JSON
// member each becomes. A list whose members are Name/Value pairs becomes
// a map.
var listParams = map[string]string{
	"Attribute": "Attributes", "AttributeName": "AttributeNames", "MessageAttributeName": "MessageAttributeNames",
	"MessageSystemAttributeName": "MessageSystemAttributeNames", "MessageAttribute": "MessageAttributes", "Tag": "tags",
	"SendMessageBatchRequestEntry": "Entries", "DeleteMessageBatchRequestEntry": "Entries",
	"ChangeMessageVisibilityBatchRequestEntry": "Entries", "TagKey": "TagKeys",
}

// QueryInput turns a query-protocol form into the operation and its JSON
// input.
func QueryInput(form url.Values) (op string, body []byte, err error) {
	params := map[string]string{}
	for k, v := range form {
		if k != "Action" && k != "Version" && len(v) > 0 {
			params[k] = v[0]
		}
	}
	body, err = json.Marshal(queryObject(params))
	return form.Get("Action"), body, err
}

// queryObject builds one JSON object from flattened parameters.
func queryObject(params map[string]string) map[string]any {
	out := map[string]any{}
	lists := map[string]map[int]map[string]string{} // list name → member index → rest → value
	for k, v := range params {
		name, rest, _ := strings.Cut(k, ".")
		member, ok := listParams[name]
		if !ok || rest == "" {
			if numericParams[k] {
				if n, err := strconv.Atoi(v); err == nil {
					out[k] = n
					continue
				}
			}
			out[k] = v
			continue
		}
		idx, sub, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		if lists[member] == nil {
			lists[member] = map[int]map[string]string{}
		}
		if lists[member][n] == nil {
			lists[member][n] = map[string]string{}
		}
		lists[member][n][sub] = v
	}
	for member, items := range lists {
		idxs := make([]int, 0, len(items))
		for i := range items {
			idxs = append(idxs, i)
		}
		sort.Ints(idxs)
		switch member {
		case "Attributes", "tags":
			m := map[string]string{}
			for _, i := range idxs {
				key := items[i]["Name"]
				if key == "" {
					key = items[i]["Key"]
				}
				m[key] = items[i]["Value"]
			}
			out[member] = m
		case "MessageAttributes":
			m := map[string]any{}
			for _, i := range idxs {
				m[items[i]["Name"]] = map[string]string{"DataType": items[i]["Value.DataType"],
					"StringValue": items[i]["Value.StringValue"], "BinaryValue": items[i]["Value.BinaryValue"]}
			}
			out[member] = m
		case "Entries":
			var entries []any
			for _, i := range idxs {
				entries = append(entries, queryObject(items[i]))
			}
			out[member] = entries
		default:
			var values []string
			for _, i := range idxs {
				values = append(values, items[i][""])
			}
			out[member] = values
		}
	}
	return out
}

// resultEntries names the members of the batch operations' result lists.
var resultEntries = map[string]string{
	"SendMessageBatch": "SendMessageBatchResultEntry", "DeleteMessageBatch": "DeleteMessageBatchResultEntry",
	"ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchResultEntry", "ListMessageMoveTasks": "ListMessageMoveTasksResultEntry",
}

// QueryOutput renders an operation's JSON output as its query-protocol
// XML answer.
func QueryOutput(op string, out any, requestID string) ([]byte, error) {
	var fields map[string]any
	if out != nil {
		raw, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString("<" + op + `Response xmlns="` + QueryNamespace + `"><` + op + "Result>")
	writeQueryFields(&b, op, fields)
	b.WriteString("</" + op + "Result><ResponseMetadata><RequestId>" + requestID + "</RequestId></ResponseMetadata></" + op + "Response>")
	return []byte(b.String()), nil
}

func writeQueryFields(b *strings.Builder, op string, fields map[string]any) {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := fields[k]
		switch k {
		case "QueueUrls", "queueUrls":
			for _, u := range asList(v) {
				element(b, "QueueUrl", u)
			}
		case "Attributes":
			pairs(b, "Attribute", v)
		case "MessageAttributes":
			m, _ := v.(map[string]any)
			for _, name := range sortedKeys(m) {
				b.WriteString("<MessageAttribute>")
				element(b, "Name", name)
				b.WriteString("<Value>")
				attr, _ := m[name].(map[string]any)
				writeQueryFields(b, op, attr)
				b.WriteString("</Value></MessageAttribute>")
			}
		case "Messages":
			members(b, op, "Message", v)
		case "Successful", "Results":
			members(b, op, resultEntries[op], v)
		case "Failed":
			members(b, op, "BatchResultErrorEntry", v)
		default:
			switch val := v.(type) {
			case map[string]any:
				b.WriteString("<" + k + ">")
				writeQueryFields(b, op, val)
				b.WriteString("</" + k + ">")
			case nil:
			default:
				element(b, k, val)
			}
		}
	}
}

// members writes a list of objects as repeated <name> elements.
func members(b *strings.Builder, op, name string, v any) {
	for _, e := range asList(v) {
		b.WriteString("<" + name + ">")
		m, _ := e.(map[string]any)
		writeQueryFields(b, op, m)
		b.WriteString("</" + name + ">")
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pairs writes a map as <name><Name>k</Name><Value>v</Value></name>.
func pairs(b *strings.Builder, name string, v any) {
	m, _ := v.(map[string]any)
	for _, k := range sortedKeys(m) {
		b.WriteString("<" + name + ">")
		element(b, "Name", k)
		element(b, "Value", m[k])
		b.WriteString("</" + name + ">")
	}
}

func element(b *strings.Builder, name string, v any) {
	var text string
	switch val := v.(type) {
	case string:
		text = val
	case float64:
		text = strconv.FormatFloat(val, 'f', -1, 64)
	case bool:
		text = strconv.FormatBool(val)
	default:
		raw, _ := json.Marshal(val)
		text = string(raw)
	}
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

// QueryError renders an error as the query protocol's ErrorResponse: the
// code is the query-compatible one SQS announces for the JSON code.
func QueryError(code, message, requestID string) []byte {
	errType := "Sender"
	if q, ok := ErrorCodes[code]; ok {
		code, errType, _ = strings.Cut(q, ";")
	}
	var b strings.Builder
	b.WriteString(xml.Header + `<ErrorResponse xmlns="` + QueryNamespace + `"><Error>`)
	element(&b, "Type", errType)
	element(&b, "Code", code)
	element(&b, "Message", message)
	b.WriteString("<Detail/></Error>")
	element(&b, "RequestId", requestID)
	b.WriteString("</ErrorResponse>")
	return []byte(b.String())
}
