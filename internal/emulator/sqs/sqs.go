// Package sqs emulates Amazon SQS queues (AWS JSON 1.0): standard queues
// with visibility, delays, long polls, redrive to dead-letter queues and
// message move tasks, billed per 64 KiB chunk as SQS bills.
package sqs

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// ErrorCodes are the X-Amzn-Query-Error values SQS sends beside its JSON
// error codes; the SDK reports them as the error code.
var ErrorCodes = core.QueryErrorCodes{
	"QueueDoesNotExist":            "AWS.SimpleQueueService.NonExistentQueue;Sender",
	"QueueNameExists":              "QueueAlreadyExists;Sender",
	"ReceiptHandleIsInvalid":       "ReceiptHandleIsInvalid;Sender",
	"MessageNotInflight":           "AWS.SimpleQueueService.MessageNotInflight;Sender",
	"TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender",
	"EmptyBatchRequest":            "AWS.SimpleQueueService.EmptyBatchRequest;Sender",
	"BatchEntryIdsNotDistinct":     "AWS.SimpleQueueService.BatchEntryIdsNotDistinct;Sender",
	"BatchRequestTooLong":          "AWS.SimpleQueueService.BatchRequestTooLong;Sender",
	"InvalidBatchEntryId":          "AWS.SimpleQueueService.InvalidBatchEntryId;Sender",
	"InvalidAttributeName":         "InvalidAttributeName;Sender",
	"InvalidAttributeValue":        "InvalidAttributeValue;Sender",
	"InvalidMessageContents":       "InvalidMessageContents;Sender",
	"InvalidParameterValue":        "InvalidParameterValue;Sender",
	"UnsupportedOperation":         "AWS.SimpleQueueService.UnsupportedOperation;Sender",
	"RequestThrottled":             "RequestThrottled;Sender",
	"ThrottlingException":          "ThrottlingException;Sender",
	"ResourceNotFoundException":    "ResourceNotFoundException;Sender",
}

const (
	sqsMaxBatch          = 10
	sqsDefaultMaxSize    = 1 << 20 // SQS raised the limit to 1 MiB in 2025
	sqsMaxWait           = 20 * time.Second
	sqsPollInterval      = 25 * time.Millisecond
	sqsDefaultVisibility = 30
	sqsDefaultRetention  = 345600
)

type messageAttribute struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
	BinaryValue []byte `json:"BinaryValue,omitempty"`
}

type sqsMessage struct {
	id, body, md5Body, md5Attrs string
	attrs                       map[string]messageAttribute
	sent                        time.Time
	visibleAt                   time.Time
	firstReceive                time.Time
	receiveCount                int
	receipt                     string // the latest receipt handle; "" before the first receive
	deadLetterSource            string // ARN of the queue it was moved from
	deleted                     bool
	duplicated                  bool // its delete was lost once already (duplicate fault)
}

type redrivePolicy struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	MaxReceiveCount     int    `json:"maxReceiveCount"`
}

type sqsQueue struct {
	name, arn string
	created   time.Time
	modified  time.Time
	attrs     map[string]string // settable attributes as given, normalised
	redrive   *redrivePolicy

	visibility, retention, delay, maxSize, wait int

	byID      map[string]*sqsMessage
	order     []*sqsMessage // arrival order; deleted entries compacted lazily
	duplicate func() bool   // the duplicate-delivery fault; nil when off
	removed   int           // deleted entries still in order
	notify    chan struct{} // closed and replaced when a message arrives
}

type moveTask struct {
	Handle, Status, SourceArn, DestinationArn string
	Moved                                     int64
	Started                                   time.Time
}

type Service struct {
	account, region string
	queueURL        func(name string) string

	// billed counts requests as SQS bills them: one per started 64 KiB of
	// payload (message bodies and attributes sent or received).
	billed atomic.Int64

	mu            sync.Mutex
	queues        map[string]*sqsQueue
	duplicateRate float64
	// Draw decides a duplicate delivery with the emulator's seeded faults.
	Draw   func(rate float64) bool
	tasks  []moveTask
	closed chan struct{}
	once   sync.Once
}

func New(account, region string, queueURL func(string) string) *Service {
	return &Service{account: account, region: region, queueURL: queueURL,
		queues: map[string]*sqsQueue{}, closed: make(chan struct{})}
}

func (s *Service) Close() { s.once.Do(func() { close(s.closed) }) }

func (s *Service) QueueARN(name string) string {
	return "arn:aws:sqs:" + s.region + ":" + s.account + ":" + name
}

// QueueNamePattern is what SQS accepts as a standard queue name.
var QueueNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func errQueueMissing() *core.Error {
	return core.Errorf(http.StatusBadRequest, "QueueDoesNotExist", "The specified queue does not exist.")
}

func invalidParam(format string, args ...any) *core.Error {
	return core.Errorf(http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf(format, args...))
}

// queueByURL finds a queue from a QueueUrl; the host is not compared, so
// localhost and 127.0.0.1 URLs both work. Callers hold s.mu.
func (s *Service) queueByURL(raw string) (*sqsQueue, *core.Error) {
	if raw == "" {
		return nil, invalidParam("Value for parameter QueueUrl is invalid. Reason: Must specify a queue URL.")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalidParam("Value %s for parameter QueueUrl is invalid.", raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] != s.account {
		return nil, errQueueMissing()
	}
	q, ok := s.queues[parts[1]]
	if !ok {
		return nil, errQueueMissing()
	}
	return q, nil
}

// queueByARN finds a queue of this account and region. Callers hold s.mu.
func (s *Service) queueByARN(arn string) (*sqsQueue, bool) {
	name, ok := strings.CutPrefix(arn, "arn:aws:sqs:"+s.region+":"+s.account+":")
	if !ok {
		return nil, false
	}
	q, found := s.queues[name]
	return q, found
}

// setAttributes validates and applies settable queue attributes.
func (s *Service) setAttributes(q *sqsQueue, in map[string]string) *core.Error {
	intAttr := func(name, v string, lo, hi int) (int, *core.Error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, core.Errorf(http.StatusBadRequest, "InvalidAttributeValue",
				fmt.Sprintf("Invalid value for the parameter %s. Reason: must be an integer from %d to %d.", name, lo, hi))
		}
		return n, nil
	}
	for name, v := range in {
		var err *core.Error
		switch name {
		case "VisibilityTimeout":
			q.visibility, err = intAttr(name, v, 0, 43200)
		case "MessageRetentionPeriod":
			q.retention, err = intAttr(name, v, 60, 1209600)
		case "DelaySeconds":
			q.delay, err = intAttr(name, v, 0, 900)
		case "MaximumMessageSize":
			q.maxSize, err = intAttr(name, v, 1024, sqsDefaultMaxSize)
		case "ReceiveMessageWaitTimeSeconds":
			q.wait, err = intAttr(name, v, 0, 20)
		case "RedrivePolicy":
			if v == "" {
				q.redrive = nil
				break
			}
			var raw struct {
				DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
				MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
			}
			if jerr := json.Unmarshal([]byte(v), &raw); jerr != nil {
				return core.Errorf(http.StatusBadRequest, "InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.")
			}
			count, cerr := strconv.Atoi(strings.Trim(string(raw.MaxReceiveCount), `"`))
			if cerr != nil || count < 1 || count > 1000 {
				return core.Errorf(http.StatusBadRequest, "InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy. Reason: maxReceiveCount must be from 1 to 1000.")
			}
			if _, ok := s.queueByARN(raw.DeadLetterTargetArn); !ok {
				return core.Errorf(http.StatusBadRequest, "InvalidAttributeValue",
					"Value "+v+" for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.")
			}
			q.redrive = &redrivePolicy{DeadLetterTargetArn: raw.DeadLetterTargetArn, MaxReceiveCount: count}
			v = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, raw.DeadLetterTargetArn, count)
		case "SqsManagedSseEnabled", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "Policy", "RedriveAllowPolicy":
		case "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit":
			return core.Errorf(http.StatusBadRequest, "UnsupportedOperation", "the emulator serves standard queues only ("+name+")")
		default:
			return core.Errorf(http.StatusBadRequest, "InvalidAttributeName", "Unknown Attribute "+name+".")
		}
		if err != nil {
			return err
		}
		q.attrs[name] = v
	}
	q.modified = time.Now()
	return nil
}

func (s *Service) Dispatch(r *http.Request, op string, body []byte) (out any, apiErr *core.Error) {
	defer func() { s.billed.Add(billedChunks(op, body, out)) }()
	switch op {
	case "CreateQueue":
		return s.createQueue(body)
	case "GetQueueUrl":
		var in struct{ QueueName string }
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.queues[in.QueueName]; !ok {
			return nil, errQueueMissing()
		}
		return map[string]string{"QueueUrl": s.queueURL(in.QueueName)}, nil
	case "ListQueues":
		return s.listQueues(body)
	case "DeleteQueue":
		var in struct{ QueueUrl string }
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, err := s.queueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		delete(s.queues, q.name)
		return nil, nil
	case "GetQueueAttributes":
		return s.getQueueAttributes(body)
	case "SetQueueAttributes":
		var in struct {
			QueueUrl   string
			Attributes map[string]string
		}
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, err := s.queueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		return nil, s.setAttributes(q, in.Attributes)
	case "SendMessage":
		return s.sendMessage(body)
	case "SendMessageBatch":
		return s.sendMessageBatch(body)
	case "ReceiveMessage":
		return s.receiveMessage(r.Context(), body)
	case "DeleteMessage":
		var in struct{ QueueUrl, ReceiptHandle string }
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, err := s.queueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		return nil, q.deleteMessage(in.ReceiptHandle)
	case "DeleteMessageBatch":
		return s.deleteMessageBatch(body)
	case "ChangeMessageVisibility":
		var in struct {
			QueueUrl, ReceiptHandle string
			VisibilityTimeout       int
		}
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, err := s.queueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		return nil, q.changeVisibility(in.ReceiptHandle, in.VisibilityTimeout, time.Now())
	case "ChangeMessageVisibilityBatch":
		return s.changeVisibilityBatch(body)
	case "PurgeQueue":
		var in struct{ QueueUrl string }
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		q, err := s.queueByURL(in.QueueUrl)
		if err != nil {
			return nil, err
		}
		clear(q.byID)
		q.order, q.removed = nil, 0
		return nil, nil
	case "StartMessageMoveTask":
		return s.startMessageMoveTask(body)
	case "ListMessageMoveTasks":
		return s.listMessageMoveTasks(body)
	case "ListDeadLetterSourceQueues":
		return s.listDeadLetterSourceQueues(body)
	default:
		return nil, core.Errorf(http.StatusBadRequest, "UnsupportedOperation", "the emulator does not implement SQS "+op)
	}
}

func (s *Service) createQueue(body []byte) (any, *core.Error) {
	var in struct {
		QueueName  string
		Attributes map[string]string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if !QueueNamePattern.MatchString(in.QueueName) {
		return nil, invalidParam("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.queues[in.QueueName]; ok {
		for k, v := range in.Attributes {
			if q.attrs[k] != v && !(k == "RedrivePolicy" && q.redrive != nil) {
				return nil, core.Errorf(http.StatusBadRequest, "QueueNameExists",
					"A queue already exists with the same name and a different value for attribute "+k)
			}
		}
		return map[string]string{"QueueUrl": s.queueURL(q.name)}, nil
	}
	now := time.Now()
	q := &sqsQueue{
		name: in.QueueName, arn: s.QueueARN(in.QueueName), created: now, modified: now,
		attrs: map[string]string{}, visibility: sqsDefaultVisibility, retention: sqsDefaultRetention,
		maxSize: sqsDefaultMaxSize, byID: map[string]*sqsMessage{}, notify: make(chan struct{}),
	}
	if err := s.setAttributes(q, in.Attributes); err != nil {
		return nil, err
	}
	q.duplicate = func() bool { return s.Draw != nil && s.Draw(s.duplicateRate) }
	s.queues[q.name] = q
	return map[string]string{"QueueUrl": s.queueURL(q.name)}, nil
}

func (s *Service) listQueues(body []byte) (any, *core.Error) {
	var in struct {
		QueueNamePrefix string
		MaxResults      int
		NextToken       string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.queues))
	for name := range s.queues {
		if strings.HasPrefix(name, in.QueueNamePrefix) {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	limit := 1000
	if in.MaxResults > 0 {
		limit = min(in.MaxResults, 1000)
	}
	start := 0
	if in.NextToken != "" {
		start = sort.SearchStrings(names, in.NextToken)
	}
	end := min(start+limit, len(names))
	out := map[string]any{}
	urls := make([]string, 0, end-start)
	for _, n := range names[start:end] {
		urls = append(urls, s.queueURL(n))
	}
	if len(urls) > 0 {
		out["QueueUrls"] = urls
	}
	if in.MaxResults > 0 && end < len(names) {
		out["NextToken"] = names[end]
	}
	return out, nil
}

// counts reports visible, in-flight and delayed messages, dropping expired
// ones. Callers hold s.mu.
func (q *sqsQueue) counts(now time.Time) (visible, inflight, delayed int) {
	for _, m := range q.order {
		if m.deleted {
			continue
		}
		switch {
		case q.expired(m, now):
			q.remove(m)
		case !m.visibleAt.After(now):
			visible++
		case m.receiveCount == 0:
			delayed++
		default:
			inflight++
		}
	}
	q.compact()
	return visible, inflight, delayed
}

func (q *sqsQueue) expired(m *sqsMessage, now time.Time) bool {
	return now.Sub(m.sent) > time.Duration(q.retention)*time.Second
}

func (s *Service) getQueueAttributes(body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	visible, inflight, delayed := q.counts(time.Now())
	all := map[string]string{
		"QueueArn":                              q.arn,
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(q.modified.Unix(), 10),
		"VisibilityTimeout":                     strconv.Itoa(q.visibility),
		"MaximumMessageSize":                    strconv.Itoa(q.maxSize),
		"MessageRetentionPeriod":                strconv.Itoa(q.retention),
		"DelaySeconds":                          strconv.Itoa(q.delay),
		"ReceiveMessageWaitTimeSeconds":         strconv.Itoa(q.wait),
		"SqsManagedSseEnabled":                  "false",
	}
	for k, v := range q.attrs {
		if _, numeric := all[k]; !numeric {
			all[k] = v
		}
	}
	if q.redrive != nil {
		all["RedrivePolicy"] = q.attrs["RedrivePolicy"]
	}
	out := map[string]string{}
	for _, name := range in.AttributeNames {
		if name == "All" {
			out = all
			break
		}
		v, ok := all[name]
		if !ok {
			if !knownQueueAttribute(name) {
				return nil, core.Errorf(http.StatusBadRequest, "InvalidAttributeName", "Unknown Attribute "+name+".")
			}
			continue
		}
		out[name] = v
	}
	return map[string]any{"Attributes": out}, nil
}

func knownQueueAttribute(name string) bool {
	switch name {
	case "Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
		"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled":
		return true
	}
	return false
}

type sendEntry struct {
	Id                string
	MessageBody       string
	DelaySeconds      *int
	MessageAttributes map[string]messageAttribute
}

// validMessageChars reports whether every rune is one SQS accepts
// (API_SendMessage, MessageBody: #x9 | #xA | #xD | #x20 to #xD7FF |
// #xE000 to #xFFFD | #x10000 to #x10FFFF). U+FFFD itself is allowed; an
// invalid UTF-8 byte, which ranging reads as U+FFFD too, is not.
func validMessageChars(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func attributesSize(attrs map[string]messageAttribute) int {
	n := 0
	for k, a := range attrs {
		n += len(k) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

// newMessage validates one message against the queue. Callers hold s.mu.
func (q *sqsQueue) newMessage(e sendEntry, now time.Time) (*sqsMessage, *core.Error) {
	if e.MessageBody == "" {
		return nil, invalidParam("The request must contain the parameter MessageBody.")
	}
	if !validMessageChars(e.MessageBody) {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidMessageContents", "Invalid characters found.")
	}
	if size := len(e.MessageBody) + attributesSize(e.MessageAttributes); size > q.maxSize {
		return nil, invalidParam("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.maxSize)
	}
	for name, a := range e.MessageAttributes {
		if name == "" || len(name) > 256 || strings.HasPrefix(strings.ToLower(name), "aws.") || strings.HasPrefix(strings.ToLower(name), "amazon.") {
			return nil, invalidParam("Message attribute name '%s' is invalid.", name)
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		switch base {
		case "String", "Number":
			if a.StringValue == "" {
				return nil, invalidParam("Message attribute '%s' must contain a non-empty value of message attribute type '%s'.", name, a.DataType)
			}
		case "Binary":
			if len(a.BinaryValue) == 0 {
				return nil, invalidParam("Message attribute '%s' must contain a non-empty value of message attribute type '%s'.", name, a.DataType)
			}
		default:
			return nil, invalidParam("The type of message (user) attribute '%s' is invalid.", name)
		}
	}
	delay := q.delay
	if e.DelaySeconds != nil {
		delay = *e.DelaySeconds
	}
	if delay < 0 || delay > 900 {
		return nil, invalidParam("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", delay)
	}
	sum := md5.Sum([]byte(e.MessageBody))
	m := &sqsMessage{
		id: core.NewUUID(), body: e.MessageBody, md5Body: hex.EncodeToString(sum[:]),
		attrs: e.MessageAttributes, sent: now, visibleAt: now.Add(time.Duration(delay) * time.Second),
	}
	if len(m.attrs) > 0 {
		m.md5Attrs = md5OfMessageAttributes(m.attrs)
	}
	return m, nil
}

// enqueue adds a message and wakes long polls. Callers hold s.mu.
func (q *sqsQueue) enqueue(m *sqsMessage) {
	q.byID[m.id] = m
	q.order = append(q.order, m)
	close(q.notify)
	q.notify = make(chan struct{})
}

func (q *sqsQueue) remove(m *sqsMessage) {
	if m.deleted {
		return
	}
	m.deleted = true
	delete(q.byID, m.id)
	q.removed++
}

// compact drops deleted entries from the arrival order once they are the
// majority. It must not run while a caller ranges over q.order.
func (q *sqsQueue) compact() {
	if q.removed > 64 && q.removed > len(q.order)/2 {
		kept := q.order[:0]
		for _, x := range q.order {
			if !x.deleted {
				kept = append(kept, x)
			}
		}
		clear(q.order[len(kept):])
		q.order, q.removed = kept, 0
	}
}

// md5OfMessageAttributes is SQS's digest of message attributes: names sorted,
// each as length-prefixed name, type, a transport byte and value.
func md5OfMessageAttributes(attrs map[string]messageAttribute) string {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	h := md5.New()
	writeLV := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range names {
		a := attrs[name]
		writeLV([]byte(name))
		writeLV([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			h.Write([]byte{2})
			writeLV(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			writeLV([]byte(a.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Service) sendMessage(body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl string
		sendEntry
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	m, err := q.newMessage(in.sendEntry, time.Now())
	if err != nil {
		return nil, err
	}
	q.enqueue(m)
	out := map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5Body}
	if m.md5Attrs != "" {
		out["MD5OfMessageAttributes"] = m.md5Attrs
	}
	return out, nil
}

var batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// checkBatchIDs applies the rules every batch request shares.
func checkBatchIDs(ids []string) *core.Error {
	if len(ids) == 0 {
		return core.Errorf(http.StatusBadRequest, "EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
	}
	if len(ids) > sqsMaxBatch {
		return core.Errorf(http.StatusBadRequest, "TooManyEntriesInBatchRequest", fmt.Sprintf("Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatch, len(ids)))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDPattern.MatchString(id) {
			return core.Errorf(http.StatusBadRequest, "InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return core.Errorf(http.StatusBadRequest, "BatchEntryIdsNotDistinct", "Id "+id+" repeated.")
		}
		seen[id] = true
	}
	return nil
}

type batchError struct {
	Id          string
	SenderFault bool
	Code        string
	Message     string
}

func (s *Service) sendMessageBatch(body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl string
		Entries  []sendEntry
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		ids[i] = e.Id
		total += len(e.MessageBody) + attributesSize(e.MessageAttributes)
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if total > q.maxSize {
		return nil, core.Errorf(http.StatusBadRequest, "BatchRequestTooLong", fmt.Sprintf("Batch requests cannot be longer than %d bytes. You have sent %d bytes.", q.maxSize, total))
	}
	type result struct {
		Id, MessageId, MD5OfMessageBody string
		MD5OfMessageAttributes          string `json:",omitempty"`
	}
	successful, failed := []result{}, []batchError{}
	now := time.Now()
	for _, e := range in.Entries {
		m, err := q.newMessage(e, now)
		if err != nil {
			failed = append(failed, batchError{Id: e.Id, SenderFault: true, Code: err.Code, Message: err.Message})
			continue
		}
		q.enqueue(m)
		successful = append(successful, result{e.Id, m.id, m.md5Body, m.md5Attrs})
	}
	return map[string]any{"Successful": successful, "Failed": failed}, nil
}

type receivedMessage struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string           `json:",omitempty"`
	MD5OfMessageAttributes string                      `json:",omitempty"`
	MessageAttributes      map[string]messageAttribute `json:",omitempty"`
}

func (s *Service) receiveMessage(ctx context.Context, body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         int
		WaitTimeSeconds             *int
		VisibilityTimeout           *int
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	max := in.MaxNumberOfMessages
	if max == 0 {
		max = 1
	}
	if max < 1 || max > sqsMaxBatch {
		return nil, invalidParam("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", max)
	}
	if in.VisibilityTimeout != nil && (*in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200) {
		return nil, invalidParam("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", *in.VisibilityTimeout)
	}
	if in.WaitTimeSeconds != nil && (*in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > 20) {
		return nil, invalidParam("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
	}
	systemNames := append(in.AttributeNames, in.MessageSystemAttributeNames...)

	s.mu.Lock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	wait := time.Duration(q.wait) * time.Second
	if in.WaitTimeSeconds != nil {
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	deadline := time.Now().Add(min(wait, sqsMaxWait))
	for {
		visibility := q.visibility
		if in.VisibilityTimeout != nil {
			visibility = *in.VisibilityTimeout
		}
		got := s.takeMessages(q, max, visibility, time.Now())
		if len(got) > 0 || !time.Now().Before(deadline) {
			out := make([]receivedMessage, 0, len(got))
			for _, m := range got {
				out = append(out, render(m, systemNames, in.MessageAttributeNames))
			}
			s.mu.Unlock()
			return map[string]any{"Messages": out}, nil
		}
		notify := q.notify
		s.mu.Unlock()
		timer := time.NewTimer(min(sqsPollInterval, time.Until(deadline)))
		select {
		case <-notify:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, core.Errorf(http.StatusBadRequest, "RequestCanceled", "request canceled")
		case <-s.closed:
			timer.Stop()
			return map[string]any{"Messages": []receivedMessage{}}, nil
		}
		timer.Stop()
		s.mu.Lock()
		if s.queues[q.name] != q {
			s.mu.Unlock()
			return nil, errQueueMissing()
		}
	}
}

// takeMessages receives up to max visible messages, moving any message that
// already reached maxReceiveCount to the dead-letter queue first, as SQS
// does. Callers hold s.mu.
func (s *Service) takeMessages(q *sqsQueue, max, visibility int, now time.Time) []*sqsMessage {
	var got []*sqsMessage
	var dlq *sqsQueue
	if q.redrive != nil {
		dlq, _ = s.queueByARN(q.redrive.DeadLetterTargetArn)
	}
	for i := 0; i < len(q.order) && len(got) < max; i++ {
		m := q.order[i]
		if m.deleted || m.visibleAt.After(now) {
			continue
		}
		if q.expired(m, now) {
			q.remove(m)
			continue
		}
		if dlq != nil && m.receiveCount >= q.redrive.MaxReceiveCount {
			q.remove(m)
			moved := *m
			moved.deleted, moved.visibleAt, moved.deadLetterSource = false, now, q.arn
			moved.receipt = ""
			dlq.enqueue(&moved)
			continue
		}
		m.receiveCount++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.receipt = m.id + "#" + core.NewID(12)
		m.visibleAt = now.Add(time.Duration(visibility) * time.Second)
		got = append(got, m)
	}
	q.compact()
	return got
}

func render(m *sqsMessage, systemNames, attrNames []string) receivedMessage {
	out := receivedMessage{MessageId: m.id, ReceiptHandle: m.receipt, MD5OfBody: m.md5Body, Body: m.body}
	system := map[string]string{
		"ApproximateReceiveCount":          strconv.Itoa(m.receiveCount),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceive.UnixMilli(), 10),
		"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
		"SenderId":                         "AIDAEMULATOR",
	}
	if m.deadLetterSource != "" {
		system["DeadLetterQueueSourceArn"] = m.deadLetterSource
	}
	for _, name := range systemNames {
		if name == "All" {
			out.Attributes = system
			break
		}
		if v, ok := system[name]; ok {
			if out.Attributes == nil {
				out.Attributes = map[string]string{}
			}
			out.Attributes[name] = v
		}
	}
	selected := map[string]messageAttribute{}
	for name, a := range m.attrs {
		for _, want := range attrNames {
			prefix, wildcard := strings.CutSuffix(want, ".*")
			if want == "All" || want == ".*" || want == name || (wildcard && strings.HasPrefix(name, prefix+".")) {
				selected[name] = a
				break
			}
		}
	}
	if len(selected) > 0 {
		out.MessageAttributes = selected
		out.MD5OfMessageAttributes = md5OfMessageAttributes(selected)
	}
	return out
}

// parseReceipt splits a receipt handle into message id and nonce.
func parseReceipt(handle string) (string, bool) {
	id, nonce, ok := strings.Cut(handle, "#")
	return id, ok && id != "" && nonce != ""
}

// deleteMessage deletes a message by its latest receipt handle. As in SQS, a
// stale handle of a message received again since succeeds without deleting.
func (q *sqsQueue) deleteMessage(handle string) *core.Error {
	id, ok := parseReceipt(handle)
	if !ok {
		return core.Errorf(http.StatusBadRequest, "ReceiptHandleIsInvalid", "The input receipt handle \""+handle+"\" is not a valid receipt handle.")
	}
	if m, found := q.byID[id]; found && m.receipt == handle {
		if !m.duplicated && q.duplicate != nil && q.duplicate() {
			// The duplicate fault: this delete is lost once, as can happen
			// in SQS, and the message is delivered again.
			m.duplicated, m.visibleAt = true, time.Now()
			return nil
		}
		q.remove(m)
		q.compact()
	}
	return nil
}

func (q *sqsQueue) changeVisibility(handle string, timeout int, now time.Time) *core.Error {
	if timeout < 0 || timeout > 43200 {
		return invalidParam("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", timeout)
	}
	id, ok := parseReceipt(handle)
	if !ok {
		return core.Errorf(http.StatusBadRequest, "ReceiptHandleIsInvalid", "The input receipt handle \""+handle+"\" is not a valid receipt handle.")
	}
	m, found := q.byID[id]
	if !found || m.receipt != handle || !m.visibleAt.After(now) {
		return core.Errorf(http.StatusBadRequest, "MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
	}
	m.visibleAt = now.Add(time.Duration(timeout) * time.Second)
	return nil
}

func (s *Service) deleteMessageBatch(body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl string
		Entries  []struct{ Id, ReceiptHandle string }
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	type ok struct{ Id string }
	successful, failed := []ok{}, []batchError{}
	for _, e := range in.Entries {
		if err := q.deleteMessage(e.ReceiptHandle); err != nil {
			failed = append(failed, batchError{Id: e.Id, SenderFault: true, Code: err.Code, Message: err.Message})
			continue
		}
		successful = append(successful, ok{e.Id})
	}
	return map[string]any{"Successful": successful, "Failed": failed}, nil
}

func (s *Service) changeVisibilityBatch(body []byte) (any, *core.Error) {
	var in struct {
		QueueUrl string
		Entries  []struct {
			Id, ReceiptHandle string
			VisibilityTimeout int
		}
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	type ok struct{ Id string }
	successful, failed := []ok{}, []batchError{}
	now := time.Now()
	for _, e := range in.Entries {
		if err := q.changeVisibility(e.ReceiptHandle, e.VisibilityTimeout, now); err != nil {
			failed = append(failed, batchError{Id: e.Id, SenderFault: true, Code: err.Code, Message: err.Message})
			continue
		}
		successful = append(successful, ok{e.Id})
	}
	return map[string]any{"Successful": successful, "Failed": failed}, nil
}

// startMessageMoveTask moves every message of a dead-letter queue back to
// its source queues (or to DestinationArn). The move completes before the
// call returns; ListMessageMoveTasks reports it.
func (s *Service) startMessageMoveTask(body []byte) (any, *core.Error) {
	var in struct{ SourceArn, DestinationArn string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.queueByARN(in.SourceArn)
	if !ok {
		return nil, core.Errorf(http.StatusBadRequest, "ResourceNotFoundException", "The resource that you specified for the SourceArn parameter doesn't exist.")
	}
	if !s.isDeadLetterQueue(src.arn) {
		return nil, invalidParam("Source queue must be configured as a Dead Letter Queue.")
	}
	var dest *sqsQueue
	if in.DestinationArn != "" {
		if dest, ok = s.queueByARN(in.DestinationArn); !ok {
			return nil, core.Errorf(http.StatusBadRequest, "ResourceNotFoundException", "The resource that you specified for the DestinationArn parameter doesn't exist.")
		}
	}
	now := time.Now()
	var moved int64
	for _, m := range append([]*sqsMessage(nil), src.order...) {
		if m.deleted || m.visibleAt.After(now) {
			continue
		}
		target := dest
		if target == nil {
			if target, ok = s.queueByARN(m.deadLetterSource); !ok {
				continue // its source queue is gone; the message stays
			}
		}
		src.remove(m)
		src.compact()
		target.enqueue(&sqsMessage{
			id: core.NewUUID(), body: m.body, md5Body: m.md5Body, md5Attrs: m.md5Attrs, attrs: m.attrs,
			sent: now, visibleAt: now,
		})
		moved++
	}
	task := moveTask{Handle: core.NewID(16), Status: "COMPLETED", SourceArn: src.arn, DestinationArn: in.DestinationArn, Moved: moved, Started: now}
	s.tasks = append(s.tasks, task)
	return map[string]string{"TaskHandle": task.Handle}, nil
}

func (s *Service) isDeadLetterQueue(arn string) bool {
	for _, q := range s.queues {
		if q.redrive != nil && q.redrive.DeadLetterTargetArn == arn {
			return true
		}
	}
	return false
}

func (s *Service) listMessageMoveTasks(body []byte) (any, *core.Error) {
	var in struct {
		SourceArn  string
		MaxResults int
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type result struct {
		TaskHandle                       string `json:",omitempty"`
		Status                           string
		SourceArn                        string
		DestinationArn                   string `json:",omitempty"`
		ApproximateNumberOfMessagesMoved int64
		StartedTimestamp                 int64
	}
	out := []result{}
	for i := len(s.tasks) - 1; i >= 0; i-- {
		t := s.tasks[i]
		if t.SourceArn == in.SourceArn {
			out = append(out, result{"", t.Status, t.SourceArn, t.DestinationArn, t.Moved, t.Started.UnixMilli()})
		}
	}
	if in.MaxResults > 0 && len(out) > in.MaxResults {
		out = out[:in.MaxResults]
	}
	return map[string]any{"Results": out}, nil
}

func (s *Service) listDeadLetterSourceQueues(body []byte) (any, *core.Error) {
	var in struct{ QueueUrl string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dlq, err := s.queueByURL(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	urls := []string{}
	for _, q := range s.queues {
		if q.redrive != nil && q.redrive.DeadLetterTargetArn == dlq.arn {
			urls = append(urls, s.queueURL(q.name))
		}
	}
	sort.Strings(urls)
	return map[string]any{"queueUrls": urls}, nil
}

// deliver enqueues a message produced inside the emulator (an S3 event) on
// a queue given by ARN. It reports false when the queue does not exist.
func (s *Service) Deliver(queueARN, body string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queueByARN(queueARN)
	if !ok {
		return false
	}
	m, err := q.newMessage(sendEntry{MessageBody: body}, time.Now())
	if err != nil {
		return false
	}
	q.enqueue(m)
	// S3 and EventBridge send with SendMessage, billed to the queue owner.
	s.billed.Add(billedUnits(len(body)))
	return true
}

func (s *Service) QueueExists(arn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.queueByARN(arn)
	return ok
}

// billedChunks is how many requests SQS bills for one call: the payload
// sent (SendMessage, SendMessageBatch) or received (ReceiveMessage) in
// started 64 KiB chunks, and one for every other call.
func billedChunks(op string, body []byte, out any) int64 {
	payload := 0
	switch op {
	case "SendMessage", "SendMessageBatch":
		payload = len(body)
	case "ReceiveMessage":
		if m, ok := out.(map[string]any); ok {
			if msgs, ok := m["Messages"].([]receivedMessage); ok {
				for _, rm := range msgs {
					payload += len(rm.Body) + attributesSize(rm.MessageAttributes)
				}
			}
		}
	}
	return billedUnits(payload)
}

// billedUnits is SQS's billing of a payload: one request per started 64 KiB
// chunk (SQS pricing: "each 64 KB chunk of a payload is billed as 1
// request"), and at least one.
func billedUnits(payload int) int64 {
	return max(1, int64((payload+64*1024-1)/(64*1024)))
}

// SetDuplicateRate sets the share of messages delivered a second time.
func (s *Service) SetDuplicateRate(rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.duplicateRate = rate
}

// Billed is the number of requests as SQS bills them.
func (s *Service) Billed() int64 { return s.billed.Load() }

// ResetBilled sets the billed count back to zero.
func (s *Service) ResetBilled() { s.billed.Store(0) }

// Permission is the IAM action and resource of a request: SQS's actions
// carry the operation's name, but the batch operations are authorized as
// their single forms (SQS Developer Guide, "Amazon SQS API permissions").
func (s *Service) Permission(op string, body []byte) (action, resource string, _ map[string][]string) {
	action = "sqs:" + strings.TrimSuffix(op, "Batch")
	var in struct{ QueueUrl, QueueName, SourceArn string }
	_ = json.Unmarshal(body, &in)
	switch {
	case in.QueueUrl != "":
		u, err := url.Parse(in.QueueUrl)
		if err == nil {
			if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) == 2 {
				return action, "arn:aws:sqs:" + s.region + ":" + parts[0] + ":" + parts[1], nil
			}
		}
	case in.QueueName != "":
		return action, s.QueueARN(in.QueueName), nil
	case in.SourceArn != "":
		return action, in.SourceArn, nil
	}
	return action, "arn:aws:sqs:" + s.region + ":" + s.account + ":*", nil
}
