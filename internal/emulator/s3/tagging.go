package s3

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Object tags (userguide object-tagging): at most 10 per object, keys up to
// 128 and values up to 256 characters.
const maxTags = 10

type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func checkTags(tags map[string]string) *core.Error {
	if len(tags) > maxTags {
		return core.Errorf(http.StatusBadRequest, "BadRequest", "Object tags cannot be greater than 10")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return core.Errorf(http.StatusBadRequest, "InvalidTag", "The TagKey or TagValue you have provided is invalid")
		}
	}
	return nil
}

// headerTags reads x-amz-tagging (URL query form, as PutObject,
// CopyObject and CreateMultipartUpload take it).
func headerTags(h http.Header) (map[string]string, *core.Error) {
	raw := h.Get("X-Amz-Tagging")
	if raw == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	tags := map[string]string{}
	for k, v := range q {
		tags[k] = v[0]
	}
	return tags, checkTags(tags)
}

func (s *Service) putObjectTagging(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	var in taggingXML
	if apiErr := core.ReadXML(r, maxConfigBody, &in); apiErr != nil {
		return apiErr
	}
	tags := map[string]string{}
	for _, t := range in.TagSet {
		tags[t.Key] = t.Value
	}
	if apiErr := checkTags(tags); apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		return apiErr
	}
	v.tags = tags
	writeVersionHeaders(w, b, v)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getObjectTagging(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	s.mu.RLock()
	b, v, apiErr := s.visibleVersion(r, bucketName, key)
	if apiErr != nil {
		s.mu.RUnlock()
		return apiErr
	}
	out := taggingXML{Xmlns: s3Namespace}
	for _, k := range sortedTagKeys(v.tags) {
		out.TagSet = append(out.TagSet, tagXML{k, v.tags[k]})
	}
	writeVersionHeaders(w, b, v)
	s.mu.RUnlock()
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

func sortedTagKeys(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tagCount is HeadObject's and GetObject's x-amz-tagging-count.
func tagCount(v *objectVersion) string { return strconv.Itoa(len(v.tags)) }

// encodeTags is the x-amz-tagging form of a tag set.
func encodeTags(tags map[string]string) string {
	q := url.Values{}
	for k, v := range tags {
		q.Set(k, v)
	}
	return q.Encode()
}
