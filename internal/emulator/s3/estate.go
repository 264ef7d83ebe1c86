package s3

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// What an account's estate needs from S3: bucket tags, inventory
// configurations, ListBuckets by page, and the CloudTrail management events
// of bucket creation and tag changes, as EventBridge delivers them.

// Bucket tags (userguide tagging, PutBucketTagging): at most 50 per bucket,
// keys 1 to 128 characters, values up to 256.
const maxBucketTags = 50

func (s *Service) putBucketTagging(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in taggingXML
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	tags := map[string]string{}
	for _, t := range in.TagSet {
		if _, dup := tags[t.Key]; dup {
			return core.Errorf(http.StatusBadRequest, "InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		tags[t.Key] = t.Value
	}
	if len(tags) > maxBucketTags {
		return core.Errorf(http.StatusBadRequest, "BadRequest", "Bucket tags cannot be greater than 50")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(k, "aws:") {
			return core.Errorf(http.StatusBadRequest, "InvalidTag", "The TagKey or TagValue you have provided is invalid")
		}
	}
	s.mu.Lock()
	b, err := s.bucketLocked(name)
	if err == nil {
		b.tags = tags
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	s.managementEvent("PutBucketTagging", name)
	return nil
}

func (s *Service) getBucketTagging(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	var out taggingXML
	if err == nil {
		for _, k := range sortedTagKeys(b.tags) {
			out.TagSet = append(out.TagSet, tagXML{k, b.tags[k]})
		}
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if len(out.TagSet) == 0 {
		// GetBucketTagging: a bucket without tags answers NoSuchTagSet.
		return core.Errorf(http.StatusNotFound, "NoSuchTagSet", "The TagSet does not exist")
	}
	out.Xmlns = s3Namespace
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

func (s *Service) deleteBucketTagging(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.Lock()
	b, err := s.bucketLocked(name)
	if err == nil {
		b.tags = nil
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	s.managementEvent("DeleteBucketTagging", name)
	return nil
}

// inventoryConfigurationXML is what PutBucketInventoryConfiguration takes,
// kept as the raw document so that Get returns what was put.
type inventoryConfigurationXML struct {
	XMLName   xml.Name `xml:"InventoryConfiguration"`
	ID        string   `xml:"Id"`
	IsEnabled bool     `xml:"IsEnabled"`
	Inner     []byte   `xml:",innerxml"`
}

func (s *Service) putBucketInventoryConfiguration(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	id := r.URL.Query().Get("id")
	var in inventoryConfigurationXML
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	if id == "" || in.ID != id {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "The Id in the configuration does not match the id parameter")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if b.inventories == nil {
		b.inventories = map[string][]byte{}
	}
	// S3 Inventory allows 1,000 configurations per bucket.
	if _, ok := b.inventories[id]; !ok && len(b.inventories) >= 1000 {
		return core.Errorf(http.StatusBadRequest, "TooManyConfigurations", "You are attempting to create a new configuration but have already reached the 1,000-configuration limit.")
	}
	b.inventories[id] = in.Inner
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getBucketInventoryConfiguration(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	id := r.URL.Query().Get("id")
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	var inner []byte
	found := false
	if err == nil {
		inner, found = b.inventories[id]
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if !found {
		return core.Errorf(http.StatusNotFound, "NoSuchConfiguration", "The specified configuration does not exist.")
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(xml.Header + `<InventoryConfiguration xmlns="` + s3Namespace + `">` + string(inner) + `</InventoryConfiguration>`))
	return nil
}

func (s *Service) deleteBucketInventoryConfiguration(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	id := r.URL.Query().Get("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if _, ok := b.inventories[id]; !ok {
		return core.Errorf(http.StatusNotFound, "NoSuchConfiguration", "The specified configuration does not exist.")
	}
	delete(b.inventories, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listBucketsPage applies ListBuckets' paging (API_ListBuckets.md):
// max-buckets from 1 to 10,000 (default 10,000), an opaque
// continuation-token, prefix, and bucket-region. names are sorted.
func listBucketsPage(q map[string][]string, names []string, region string) (page []string, next string, apiErr *core.Error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	max := 10000
	if v := get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, "", core.Errorf(http.StatusBadRequest, "InvalidArgument", "max-buckets must be between 1 and 10000")
		}
		max = n
	}
	if r := get("bucket-region"); r != "" && r != region {
		return nil, "", nil
	}
	after := ""
	if tok := get("continuation-token"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return nil, "", core.Errorf(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
		}
		after = string(raw)
	}
	prefix := get("prefix")
	for _, n := range names {
		if n <= after || !strings.HasPrefix(n, prefix) {
			continue
		}
		if len(page) == max {
			return page, base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1])), nil
		}
		page = append(page, n)
	}
	return page, "", nil
}

// managementEvent delivers the CloudTrail record of a bucket API call, as
// EventBridge does ("AWS API Call via CloudTrail", source aws.s3), to the
// queues of the management-event rules. EventBridge receives management
// events from a trail that logs them (eb-service-event-cloudtrail.md).
func (s *Service) managementEvent(name, bucket string) {
	var queues []string
	for _, rule := range s.rules() {
		if rule.Management {
			queues = append(queues, rule.Queue)
		}
	}
	if len(queues) == 0 {
		return
	}
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{
		"version": "0", "id": core.NewUUID(), "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
		"account": s.account, "time": now.Format(time.RFC3339), "region": s.region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": s.region,
			"eventTime": now.Format(time.RFC3339), "eventType": "AwsApiCall", "managementEvent": true, "readOnly": false,
			"eventCategory": "Management", "recipientAccountId": s.account, "sourceIPAddress": "127.0.0.1",
			"requestID": core.NewID(8), "eventID": core.NewUUID(),
			"userIdentity":      map[string]string{"type": "IAMUser", "accountId": s.account},
			"requestParameters": map[string]string{"bucketName": bucket, "Host": bucket + ".s3.amazonaws.com"},
		},
	})
	for _, q := range queues {
		s.sqs.Deliver(s.sqs.QueueARN(q), string(body))
	}
}

// replicationConfigurationXML is what PutBucketReplication takes, kept as
// put (the emulator does not replicate; s3rekey only reads the rules'
// destinations).
type replicationConfigurationXML struct {
	XMLName xml.Name `xml:"ReplicationConfiguration"`
	Role    string   `xml:"Role"`
	Rules   []struct {
		Destination struct {
			Bucket string `xml:"Bucket"`
		} `xml:"Destination"`
	} `xml:"Rule"`
	Inner []byte `xml:",innerxml"`
}

func (s *Service) putBucketReplication(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in replicationConfigurationXML
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	if in.Role == "" || len(in.Rules) == 0 {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	for _, rule := range in.Rules {
		if !strings.HasPrefix(rule.Destination.Bucket, "arn:aws:s3:::") {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "Invalid destination bucket ARN")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	// Replication needs versioning on the source (userguide
	// replication-requirements).
	if b.versioning != versioningEnabled {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Versioning must be 'Enabled' on the bucket to apply a replication configuration")
	}
	b.replication = in.Inner
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getBucketReplication(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	var inner []byte
	if err == nil {
		inner = b.replication
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if inner == nil {
		return core.Errorf(http.StatusNotFound, "ReplicationConfigurationNotFoundError", "The replication configuration was not found")
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(xml.Header + `<ReplicationConfiguration xmlns="` + s3Namespace + `">` + string(inner) + `</ReplicationConfiguration>`))
	return nil
}
