package s3

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Multipart upload limits (Amazon S3 multipart upload limits, userguide
// qfacts.md): parts 1 to 10,000, each but the last at least 5 MiB.
const (
	maxParts        = 10000
	minPartSize     = 5 << 20
	maxMultipartObj = 1 << 30 // the in-memory store's bound on an assembled object
)

// upload is a multipart upload in progress. The create request's headers
// (encryption, metadata, storage class, lock) describe the object that
// CompleteMultipartUpload assembles.
type upload struct {
	id, key      string
	initiated    time.Time
	header       http.Header
	checksumAlg  string // lower-case; "" when the create named none
	checksumType string // COMPOSITE or FULL_OBJECT
	parts        map[int]*part
}

type part struct {
	data         []byte
	etag         string // quoted MD5 of the part
	checksum     string // base64, under the upload's algorithm (or CRC64NVME)
	lastModified time.Time
}

func errNoSuchUpload() *core.Error {
	return core.Errorf(http.StatusNotFound, "NoSuchUpload",
		"The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

// checksumName is a checksum algorithm's name in XML elements and headers:
// CRC32, CRC32C, SHA1, SHA256, CRC64NVME.
func checksumName(alg string) string { return strings.ToUpper(alg) }

// uploadLocked finds an upload; callers hold s.mu.
func (s *Service) uploadLocked(bucketName, key, id string) (*bucket, *upload, *core.Error) {
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	up, ok := b.uploads[id]
	if !ok || up.key != key {
		return nil, nil, errNoSuchUpload()
	}
	return b, up, nil
}

func (s *Service) createMultipartUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	if len(key) > 1024 {
		return core.Errorf(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	req, apiErr := parseSSEHeaders(r.Header, "")
	if apiErr != nil {
		return apiErr
	}
	if _, _, _, apiErr := lockHeaders(r.Header); apiErr != nil {
		return apiErr
	}
	if _, apiErr := headerTags(r.Header); apiErr != nil {
		return apiErr
	}
	if c := r.Header.Get("X-Amz-Storage-Class"); c != "" && !slices.Contains(storageClasses, c) {
		return core.Errorf(http.StatusBadRequest, "InvalidStorageClass", "The storage class you specified is not valid")
	}
	alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if _, ok := checksumAlgorithms[alg]; alg != "" && !ok {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Checksum algorithm provided is unsupported.")
	}
	// Checking object integrity: CRC64NVME is full-object only; the SHA
	// algorithms are composite only; CRC32 and CRC32C default to composite.
	ctype := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type"))
	switch {
	case ctype == "" && alg == "crc64nvme", ctype == "" && alg == "":
		ctype = "FULL_OBJECT"
	case ctype == "":
		ctype = "COMPOSITE"
	case ctype != "COMPOSITE" && ctype != "FULL_OBJECT",
		ctype == "COMPOSITE" && alg == "crc64nvme",
		ctype == "FULL_OBJECT" && (alg == "sha1" || alg == "sha256"):
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "The "+checksumName(alg)+" checksum algorithm does not support the "+ctype+" checksum type.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	if (r.Header.Get("X-Amz-Object-Lock-Mode") != "" || r.Header.Get("X-Amz-Object-Lock-Legal-Hold") != "" || r.Header.Get(eventHoldHeader) != "") && !b.objectLock {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
	}
	up := &upload{id: core.NewID(32), key: key, initiated: time.Now().UTC(), header: r.Header.Clone(), checksumAlg: alg, checksumType: ctype,
		parts: map[int]*part{}}
	if b.uploads == nil {
		b.uploads = map[string]*upload{}
	}
	b.uploads[up.id] = up
	if alg != "" {
		w.Header().Set("x-amz-checksum-algorithm", checksumName(alg))
		w.Header().Set("x-amz-checksum-type", ctype)
	}
	writeRequestedEncryption(w, req)
	core.WriteXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{Xmlns: s3Namespace, Bucket: bucketName, Key: key, UploadID: up.id})
	return nil
}

// writeRequestedEncryption echoes the encryption an upload asked for.
func writeRequestedEncryption(w http.ResponseWriter, req sseRequest) {
	switch req.kind {
	case sseS3, sseKMS, sseDSSE:
		w.Header().Set("x-amz-server-side-encryption", req.kind.headerValue())
	case sseC:
		w.Header().Set("x-amz-server-side-encryption-customer-algorithm", "AES256")
	}
}

// partNumber reads the partNumber query parameter (1 to 10,000).
func partNumber(r *http.Request) (int, *core.Error) {
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > maxParts {
		return 0, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

// storePart checks a part's checksum (if the request sent one) and stores
// it under the upload's algorithm.
func (s *Service) storePart(r *http.Request, up *upload, n int, data []byte) (*part, *core.Error) {
	alg := up.checksumAlg
	if alg == "" {
		alg = "crc64nvme"
	}
	for name, compute := range checksumAlgorithms {
		sent := r.Header.Get("X-Amz-Checksum-" + name)
		if sent == "" {
			continue
		}
		if up.checksumAlg != "" && name != up.checksumAlg {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidRequest",
				"Checksum Type mismatch occurred, expected checksum Type: "+up.checksumAlg+", actual checksum Type: "+name)
		}
		if compute(data) != sent {
			return nil, core.Errorf(http.StatusBadRequest, "BadDigest", "The "+checksumName(name)+" you specified did not match the calculated checksum.")
		}
	}
	sum := md5.Sum(data)
	if cmd5 := r.Header.Get("Content-Md5"); cmd5 != "" && cmd5 != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, core.Errorf(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	}
	p := &part{data: data, etag: `"` + hex.EncodeToString(sum[:]) + `"`, checksum: checksumAlgorithms[alg](data), lastModified: time.Now().UTC()}
	up.parts[n] = p
	return p, nil
}

func (s *Service) uploadPart(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	n, apiErr := partNumber(r)
	if apiErr != nil {
		return apiErr
	}
	body, apiErr := readBody(r)
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, up, apiErr := s.uploadLocked(bucketName, key, r.URL.Query().Get("uploadId"))
	if apiErr != nil {
		return apiErr
	}
	p, apiErr := s.storePart(r, up, n, body)
	if apiErr != nil {
		return apiErr
	}
	if up.checksumAlg != "" {
		w.Header().Set("x-amz-checksum-"+up.checksumAlg, p.checksum)
	}
	w.Header().Set("ETag", p.etag)
	w.WriteHeader(http.StatusOK)
	return nil
}

// copySource reads x-amz-copy-source: bucket, key and version. S3 reads
// the header as URL-encoded (API_CopyObject, x-amz-copy-source: "The value
// must be URL-encoded"), and URL decoding reads a raw "+" as a space, as
// the AWS CLI and SDKs found (they encode "+" as %2B for that reason).
func copySource(r *http.Request) (bucketName, key, version string, apiErr *core.Error) {
	src := r.Header.Get("X-Amz-Copy-Source")
	srcPath, srcQuery, _ := strings.Cut(src, "?")
	srcPath, err := url.QueryUnescape(strings.TrimPrefix(srcPath, "/"))
	bucketName, key, ok := strings.Cut(srcPath, "/")
	if err != nil || !ok || key == "" {
		return "", "", "", core.Errorf(http.StatusBadRequest, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	q, _ := url.ParseQuery(srcQuery)
	return bucketName, key, q.Get("versionId"), nil
}

func (s *Service) uploadPartCopy(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	n, apiErr := partNumber(r)
	if apiErr != nil {
		return apiErr
	}
	srcBucket, srcKey, srcVersion, apiErr := copySource(r)
	if apiErr != nil {
		return apiErr
	}
	srcReq, apiErr := parseSSEHeaders(r.Header, "X-Amz-Copy-Source-")
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, apiErr := s.bucketLocked(srcBucket)
	if apiErr != nil {
		return apiErr
	}
	src, apiErr := readableVersion(sb, srcKey, srcVersion)
	if apiErr != nil {
		return apiErr
	}
	if apiErr := copyPreconditions(r, src); apiErr != nil {
		return apiErr
	}
	_, up, apiErr := s.uploadLocked(bucketName, key, r.URL.Query().Get("uploadId"))
	if apiErr != nil {
		return apiErr
	}
	plain, apiErr := s.openObject(src, srcReq)
	if apiErr != nil {
		return apiErr
	}
	if rng := r.Header.Get("X-Amz-Copy-Source-Range"); rng != "" {
		start, end, ok := parseRange(rng, int64(len(plain)))
		if !ok {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "Range specified is not valid for source object of size: "+strconv.Itoa(len(plain)))
		}
		plain = plain[start : end+1]
	}
	p, apiErr := s.storePart(&http.Request{Header: http.Header{}}, up, n, append([]byte(nil), plain...))
	if apiErr != nil {
		return apiErr
	}
	if srcVersion != "" || sb.versioning != "" {
		w.Header().Set("x-amz-copy-source-version-id", src.versionID)
	}
	type result struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		ETag         string   `xml:"ETag"`
		LastModified string   `xml:"LastModified"`
		Checksums    []checksumXML
	}
	out := result{Xmlns: s3Namespace, ETag: p.etag, LastModified: isoTime(p.lastModified)}
	if up.checksumAlg != "" {
		// API_CopyPartResult: the part's checksum under the upload's
		// algorithm, which CompleteMultipartUpload then needs back.
		out.Checksums = []checksumXML{{XMLName: xml.Name{Local: "Checksum" + checksumName(up.checksumAlg)}, Value: p.checksum}}
	}
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

type completeXML struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber        int    `xml:"PartNumber"`
		ETag              string `xml:"ETag"`
		ChecksumCRC32     string `xml:"ChecksumCRC32"`
		ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
		ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
		ChecksumSHA1      string `xml:"ChecksumSHA1"`
		ChecksumSHA256    string `xml:"ChecksumSHA256"`
	} `xml:"Part"`
}

// completeMultipartUpload assembles the listed parts into an object, as
// S3 does: the ETag is the MD5 of the parts' binary MD5s followed by
// "-<parts>", and a composite checksum is the checksum of the parts'
// checksums followed by "-<parts>" (Checking object integrity, "Using
// part-level checksums for multipart uploads").
func (s *Service) completeMultipartUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	var in completeXML
	if apiErr := core.ReadXML(r, 1<<20, &in); apiErr != nil {
		return apiErr
	}
	if len(in.Parts) == 0 {
		return core.Errorf(http.StatusBadRequest, "MalformedXML",
			"The XML you provided was not well-formed or did not validate against our published schema")
	}
	s.mu.Lock()
	b, up, apiErr := s.uploadLocked(bucketName, key, r.URL.Query().Get("uploadId"))
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	if apiErr := destinationPreconditions(r, b, key); apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	for i, p := range in.Parts {
		if i > 0 && p.PartNumber <= in.Parts[i-1].PartNumber {
			s.mu.Unlock()
			return core.Errorf(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
		}
	}
	var whole []byte
	var md5s, sums []byte
	for i, p := range in.Parts {
		stored, ok := up.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(stored.etag, `"`) {
			s.mu.Unlock()
			return core.Errorf(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
		}
		if apiErr := partChecksumGiven(up, p.PartNumber, stored, map[string]string{"crc32": p.ChecksumCRC32, "crc32c": p.ChecksumCRC32C,
			"crc64nvme": p.ChecksumCRC64NVME, "sha1": p.ChecksumSHA1, "sha256": p.ChecksumSHA256}); apiErr != nil {
			s.mu.Unlock()
			return apiErr
		}
		if i < len(in.Parts)-1 && len(stored.data) < minPartSize {
			s.mu.Unlock()
			return core.Errorf(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
		if len(whole)+len(stored.data) > maxMultipartObj {
			s.mu.Unlock()
			return core.Errorf(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the emulator's maximum object size")
		}
		whole = append(whole, stored.data...)
		raw, _ := hex.DecodeString(strings.Trim(stored.etag, `"`))
		md5s = append(md5s, raw...)
		sum, _ := base64.StdEncoding.DecodeString(stored.checksum)
		sums = append(sums, sum...)
	}
	create := &http.Request{Header: up.header.Clone()}
	for name := range checksumAlgorithms {
		create.Header.Del("X-Amz-Checksum-" + name)
	}
	create.Header.Del("Content-Md5")
	v, kmsOp, apiErr := s.newVersion(b, key, create, whole)
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	etagSum := md5.Sum(md5s)
	v.etag = fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etagSum[:]), len(in.Parts))
	alg := up.checksumAlg
	if alg == "" {
		alg = "crc64nvme"
	}
	v.checksumAlg, v.checksumType = alg, up.checksumType
	if up.checksumType == "COMPOSITE" {
		v.checksum = fmt.Sprintf("%s-%d", checksumAlgorithms[alg](sums), len(in.Parts))
	} else {
		v.checksum = checksumAlgorithms[alg](whole)
	}
	for _, p := range in.Parts {
		stored := up.parts[p.PartNumber]
		v.parts = append(v.parts, objectPart{number: p.PartNumber, size: int64(len(stored.data)), checksum: stored.checksum})
	}
	delete(b.uploads, up.id)
	b.addVersion(v)
	ev := b.newEvent("ObjectCreated:CompleteMultipartUpload", "CompleteMultipartUpload", v)
	writeVersionHeaders(w, b, v)
	s.mu.Unlock()
	if kmsOp != "" {
		s.counter.Add("kms", kmsOp, bucketName)
	}
	writeEncryptionHeaders(w, v.env)
	type result struct {
		XMLName      xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		Location     string   `xml:"Location"`
		Bucket       string   `xml:"Bucket"`
		Key          string   `xml:"Key"`
		ETag         string   `xml:"ETag"`
		Checksums    []checksumXML
		ChecksumType string `xml:"ChecksumType"`
	}
	core.WriteXML(w, http.StatusOK, result{Xmlns: s3Namespace, Location: "/" + bucketName + "/" + key, Bucket: bucketName, Key: key, ETag: v.etag,
		Checksums: []checksumXML{{XMLName: xml.Name{Local: "Checksum" + checksumName(v.checksumAlg)}, Value: v.checksum}}, ChecksumType: v.checksumType})
	s.emit(ev)
	return nil
}

// checksumXML is one Checksum<ALG> element.
type checksumXML struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

func (s *Service) abortMultipartUpload(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, up, apiErr := s.uploadLocked(bucketName, key, r.URL.Query().Get("uploadId"))
	if apiErr != nil {
		return apiErr
	}
	delete(b.uploads, up.id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) listParts(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, up, apiErr := s.uploadLocked(bucketName, key, r.URL.Query().Get("uploadId"))
	if apiErr != nil {
		return apiErr
	}
	type partXML struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int    `xml:"Size"`
		Checksums    []checksumXML
	}
	type result struct {
		XMLName           xml.Name  `xml:"ListPartsResult"`
		Xmlns             string    `xml:"xmlns,attr"`
		Bucket            string    `xml:"Bucket"`
		Key               string    `xml:"Key"`
		UploadID          string    `xml:"UploadId"`
		MaxParts          int       `xml:"MaxParts"`
		IsTruncated       bool      `xml:"IsTruncated"`
		Parts             []partXML `xml:"Part"`
		StorageClass      string    `xml:"StorageClass"`
		ChecksumAlgorithm string    `xml:"ChecksumAlgorithm,omitempty"`
		ChecksumType      string    `xml:"ChecksumType,omitempty"`
	}
	out := result{Xmlns: s3Namespace, Bucket: bucketName, Key: key, UploadID: up.id, MaxParts: 1000, StorageClass: "STANDARD"}
	if c := up.header.Get("X-Amz-Storage-Class"); c != "" {
		out.StorageClass = c
	}
	if up.checksumAlg != "" {
		out.ChecksumAlgorithm, out.ChecksumType = checksumName(up.checksumAlg), up.checksumType
	}
	numbers := make([]int, 0, len(up.parts))
	for n := range up.parts {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	for _, n := range numbers {
		p := up.parts[n]
		px := partXML{PartNumber: n, LastModified: isoTime(p.lastModified), ETag: p.etag, Size: len(p.data)}
		if up.checksumAlg != "" {
			px.Checksums = []checksumXML{{XMLName: xml.Name{Local: "Checksum" + checksumName(up.checksumAlg)}, Value: p.checksum}}
		}
		out.Parts = append(out.Parts, px)
	}
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

func (s *Service) listMultipartUploads(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	type uploadXML struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		Initiated    string `xml:"Initiated"`
		StorageClass string `xml:"StorageClass"`
	}
	type result struct {
		XMLName     xml.Name    `xml:"ListMultipartUploadsResult"`
		Xmlns       string      `xml:"xmlns,attr"`
		Bucket      string      `xml:"Bucket"`
		Prefix      string      `xml:"Prefix"`
		MaxUploads  int         `xml:"MaxUploads"`
		IsTruncated bool        `xml:"IsTruncated"`
		Uploads     []uploadXML `xml:"Upload"`
	}
	prefix := r.URL.Query().Get("prefix")
	out := result{Xmlns: s3Namespace, Bucket: bucketName, Prefix: prefix, MaxUploads: 1000}
	for _, up := range b.uploads {
		if !strings.HasPrefix(up.key, prefix) {
			continue
		}
		class := up.header.Get("X-Amz-Storage-Class")
		if class == "" {
			class = "STANDARD"
		}
		out.Uploads = append(out.Uploads, uploadXML{Key: up.key, UploadID: up.id, Initiated: isoTime(up.initiated), StorageClass: class})
	}
	sort.Slice(out.Uploads, func(i, j int) bool {
		a, c := out.Uploads[i], out.Uploads[j]
		return a.Key < c.Key || (a.Key == c.Key && a.Initiated < c.Initiated)
	})
	core.WriteXML(w, http.StatusOK, out)
	return nil
}
