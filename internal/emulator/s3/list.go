package s3

import (
	"github.com/s3rekey/s3rekey/internal/emulator/core"

	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type listParams struct {
	prefix, delimiter, encoding string
	maxKeys                     int
}

func readListParams(q url.Values) (listParams, *core.Error) {
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), encoding: q.Get("encoding-type"), maxKeys: 1000}
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range")
		}
		p.maxKeys = min(n, 1000)
	}
	if p.encoding != "" && p.encoding != "url" {
		return p, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	return p, nil
}

// encode applies encoding-type=url to a name in a listing answer. Without
// it, S3 writes characters that XML 1.0 forbids (U+0001 and the like) as
// character references, which XML 1.0 parsers (the SDKs' among them)
// refuse: the reason ListObjectsV2 documents encoding-type. They are
// marked here and written as references by writeListXML.
func (p listParams) encode(s string) string {
	if p.encoding == "url" {
		return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	}
	if strings.IndexFunc(s, xmlForbidden) < 0 {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if xmlForbidden(c) {
			fmt.Fprintf(&b, "%c%X%c", refOpen, c, refClose)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Private-use runes bracket a forbidden character's code in a listing
// until writeListXML turns it into a character reference.
const (
	refOpen  = '\uE000'
	refClose = '\uE001'
)

var charRef = regexp.MustCompile("\uE000([0-9A-F]+)\uE001")

// xmlForbidden reports a rune outside XML 1.0's Char production.
func xmlForbidden(c rune) bool {
	return !(c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF))
}

// writeListXML is writeXML for listings, writing marked characters as the
// character references S3 sends.
func writeListXML(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		core.WriteXML(w, http.StatusInternalServerError, core.XMLError{Code: "InternalError", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	core.SetS3RequestIDs(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(charRef.ReplaceAll(buf.Bytes(), []byte("&#x$1;")))
}

// commonPrefix reports the rolled-up prefix of key under the delimiter.
func (p listParams) commonPrefix(key string) (string, bool) {
	if p.delimiter == "" {
		return "", false
	}
	rest := key[len(p.prefix):]
	i := strings.Index(rest, p.delimiter)
	if i < 0 {
		return "", false
	}
	return p.prefix + rest[:i+len(p.delimiter)], true
}

type listEntry struct {
	Key               string `xml:"Key"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              int64  `xml:"Size"`
	StorageClass      string `xml:"StorageClass"`
}

type prefixEntry struct {
	Prefix string `xml:"Prefix"`
}

func (s *Service) listObjectsV2(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	q := r.URL.Query()
	p, apiErr := readListParams(q)
	if apiErr != nil {
		return apiErr
	}
	token := q.Get("continuation-token")
	after := q.Get("start-after")
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
		}
		after = string(raw)
	}
	type result struct {
		XMLName               xml.Name      `xml:"ListBucketResult"`
		Xmlns                 string        `xml:"xmlns,attr"`
		Name                  string        `xml:"Name"`
		Prefix                string        `xml:"Prefix"`
		Delimiter             string        `xml:"Delimiter,omitempty"`
		MaxKeys               int           `xml:"MaxKeys"`
		KeyCount              int           `xml:"KeyCount"`
		EncodingType          string        `xml:"EncodingType,omitempty"`
		IsTruncated           bool          `xml:"IsTruncated"`
		ContinuationToken     string        `xml:"ContinuationToken,omitempty"`
		NextContinuationToken string        `xml:"NextContinuationToken,omitempty"`
		StartAfter            string        `xml:"StartAfter,omitempty"`
		Contents              []listEntry   `xml:"Contents"`
		CommonPrefixes        []prefixEntry `xml:"CommonPrefixes"`
	}
	out := result{Xmlns: s3Namespace, Name: bucketName, Prefix: p.encode(p.prefix), Delimiter: p.encode(p.delimiter),
		MaxKeys: p.maxKeys, EncodingType: p.encoding, ContinuationToken: token, StartAfter: p.encode(q.Get("start-after"))}

	page, apiErr := s.listCurrent(bucketName, p, after)
	if apiErr != nil {
		return apiErr
	}
	out.Contents, out.CommonPrefixes, out.IsTruncated = page.contents, page.prefixes, page.truncated
	out.KeyCount = len(page.contents) + len(page.prefixes)
	if out.IsTruncated {
		out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(page.last))
	}
	writeListXML(w, out)
	return nil
}

// currentPage is one page of current objects: keys and rolled-up prefixes
// after a marker, and the last name listed.
type currentPage struct {
	contents  []listEntry
	prefixes  []prefixEntry
	truncated bool
	last      string
}

// skipPrefix returns the index of the last key under prefix cp, from i on:
// the sorted keys under a prefix are contiguous, and one common prefix
// stands for them all, so a listing by delimiter need not visit each.
func skipPrefix(keys []string, i int, cp string) int {
	return i + sort.Search(len(keys)-i, func(j int) bool { return !strings.HasPrefix(keys[i+j], cp) }) - 1
}

// listCurrent lists current objects after a key (ListObjects and
// ListObjectsV2 share it; they differ in how they name the marker).
func (s *Service) listCurrent(bucketName string, p listParams, after string) (currentPage, *core.Error) {
	var page currentPage
	s.mu.Lock() // keys() may re-sort
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return page, apiErr
	}
	keys := b.keys()
	n := 0
	for i := sort.SearchStrings(keys, max(after, p.prefix)); i < len(keys); i++ {
		key := keys[i]
		if !strings.HasPrefix(key, p.prefix) {
			break
		}
		if key <= after {
			continue
		}
		v := b.current(key)
		if v == nil || v.deleteMarker {
			continue
		}
		cp, rolled := p.commonPrefix(key)
		if rolled && (cp <= after || page.last == cp) {
			i = skipPrefix(keys, i, cp)
			continue
		}
		if n == p.maxKeys {
			page.truncated = true
			break
		}
		n++
		if rolled {
			page.prefixes = append(page.prefixes, prefixEntry{p.encode(cp)})
			page.last = cp
			i = skipPrefix(keys, i, cp)
			continue
		}
		page.contents = append(page.contents, listEntry{
			Key: p.encode(key), LastModified: isoTime(v.lastModified), ETag: v.etag,
			ChecksumAlgorithm: strings.ToUpper(v.checksumAlg), ChecksumType: v.checksumType, Size: v.size, StorageClass: v.storageClass,
		})
		page.last = key
	}
	return page, nil
}

// listObjects is ListObjects (version 1): the marker is a key, and
// NextMarker is given only with a delimiter (API reference, ListObjects:
// "If response does not include the NextMarker element and it is
// truncated, you can use the value of the last Key element").
func (s *Service) listObjects(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	q := r.URL.Query()
	p, apiErr := readListParams(q)
	if apiErr != nil {
		return apiErr
	}
	page, apiErr := s.listCurrent(bucketName, p, q.Get("marker"))
	if apiErr != nil {
		return apiErr
	}
	type result struct {
		XMLName        xml.Name      `xml:"ListBucketResult"`
		Xmlns          string        `xml:"xmlns,attr"`
		Name           string        `xml:"Name"`
		Prefix         string        `xml:"Prefix"`
		Marker         string        `xml:"Marker"`
		NextMarker     string        `xml:"NextMarker,omitempty"`
		Delimiter      string        `xml:"Delimiter,omitempty"`
		MaxKeys        int           `xml:"MaxKeys"`
		EncodingType   string        `xml:"EncodingType,omitempty"`
		IsTruncated    bool          `xml:"IsTruncated"`
		Contents       []listEntry   `xml:"Contents"`
		CommonPrefixes []prefixEntry `xml:"CommonPrefixes"`
	}
	out := result{Xmlns: s3Namespace, Name: bucketName, Prefix: p.encode(p.prefix), Marker: p.encode(q.Get("marker")),
		Delimiter: p.encode(p.delimiter), MaxKeys: p.maxKeys, EncodingType: p.encoding, IsTruncated: page.truncated,
		Contents: page.contents, CommonPrefixes: page.prefixes}
	if page.truncated && p.delimiter != "" {
		out.NextMarker = p.encode(page.last)
	}
	writeListXML(w, out)
	return nil
}

// versionEntry is a <Version> or a <DeleteMarker>, by XMLName.
type versionEntry struct {
	XMLName      xml.Name
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag,omitempty"`
	Size         *int64 `xml:"Size,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
	OwnerID      string `xml:"Owner>ID"`
}

func (s *Service) listObjectVersions(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	q := r.URL.Query()
	p, apiErr := readListParams(q)
	if apiErr != nil {
		return apiErr
	}
	keyMarker, versionMarker := q.Get("key-marker"), q.Get("version-id-marker")
	if versionMarker != "" && keyMarker == "" {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "A version-id marker cannot be specified without a key marker.")
	}
	type result struct {
		XMLName             xml.Name       `xml:"ListVersionsResult"`
		Xmlns               string         `xml:"xmlns,attr"`
		Name                string         `xml:"Name"`
		Prefix              string         `xml:"Prefix"`
		Delimiter           string         `xml:"Delimiter,omitempty"`
		KeyMarker           string         `xml:"KeyMarker"`
		VersionIDMarker     string         `xml:"VersionIdMarker"`
		NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
		NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
		MaxKeys             int            `xml:"MaxKeys"`
		EncodingType        string         `xml:"EncodingType,omitempty"`
		IsTruncated         bool           `xml:"IsTruncated"`
		Entries             []versionEntry `xml:",any"`
		CommonPrefixes      []prefixEntry  `xml:"CommonPrefixes"`
	}
	out := result{Xmlns: s3Namespace, Name: bucketName, Prefix: p.encode(p.prefix), Delimiter: p.encode(p.delimiter),
		KeyMarker: p.encode(keyMarker), VersionIDMarker: versionMarker, MaxKeys: p.maxKeys, EncodingType: p.encoding}

	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	keys := b.keys()
	count := 0
	lastKey, lastVersion, lastPrefix := "", "", ""
	truncate := func() {
		out.IsTruncated = true
		out.NextKeyMarker, out.NextVersionIDMarker = p.encode(lastKey), lastVersion
	}
keysLoop:
	for i := sort.SearchStrings(keys, max(keyMarker, p.prefix)); i < len(keys); i++ {
		key := keys[i]
		if !strings.HasPrefix(key, p.prefix) {
			break
		}
		if key < keyMarker || (key == keyMarker && versionMarker == "") {
			continue
		}
		if cp, ok := p.commonPrefix(key); ok {
			if cp == lastPrefix || cp <= keyMarker {
				continue
			}
			if count == p.maxKeys {
				truncate()
				break
			}
			out.CommonPrefixes = append(out.CommonPrefixes, prefixEntry{p.encode(cp)})
			count++
			lastPrefix, lastKey, lastVersion = cp, cp, ""
			continue
		}
		vs := b.objects[key]
		skipping := key == keyMarker
		for j := len(vs) - 1; j >= 0; j-- {
			v := vs[j]
			if skipping {
				if v.versionID == versionMarker {
					skipping = false
				}
				continue
			}
			if count == p.maxKeys {
				truncate()
				break keysLoop
			}
			e := versionEntry{Key: p.encode(key), VersionID: v.versionID, IsLatest: j == len(vs)-1,
				LastModified: isoTime(v.lastModified), OwnerID: s.account}
			if v.deleteMarker {
				e.XMLName = xml.Name{Local: "DeleteMarker"}
			} else {
				size := v.size
				e.XMLName = xml.Name{Local: "Version"}
				e.ETag, e.Size, e.StorageClass = v.etag, &size, v.storageClass
			}
			out.Entries = append(out.Entries, e)
			count++
			lastKey, lastVersion = key, v.versionID
		}
	}
	writeListXML(w, out)
	return nil
}

// sortBy sorts a slice by a string key.
func sortBy[T any](s []T, key func(T) string) {
	sort.Slice(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
}
