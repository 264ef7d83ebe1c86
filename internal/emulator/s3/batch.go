package s3

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// deleteObjects is DeleteObjects: up to 1,000 keys, each deleted as
// DeleteObject would and authorized as s3:DeleteObject (or
// s3:DeleteObjectVersion) on its own ARN; the request must carry
// Content-MD5 or a checksum (API reference, DeleteObjects).
func (s *Service) deleteObjects(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		return core.Errorf(http.StatusBadRequest, "IncompleteBody", "reading body: "+err.Error())
	}
	if md := r.Header.Get("Content-Md5"); md != "" {
		sum := md5.Sum(body)
		if md != base64.StdEncoding.EncodeToString(sum[:]) {
			return core.Errorf(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	} else if !hasChecksumHeader(r.Header) {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*")
	}
	var in struct {
		Quiet   bool `xml:"Quiet"`
		Objects []struct {
			Key       string `xml:"Key"`
			VersionID string `xml:"VersionId"`
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(body, &in); err != nil || len(in.Objects) == 0 || len(in.Objects) > 1000 {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	type deletedXML struct {
		Key                   string `xml:"Key"`
		VersionID             string `xml:"VersionId,omitempty"`
		DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
		DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
	}
	type errorXML struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId,omitempty"`
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
	}
	out := struct {
		XMLName xml.Name     `xml:"DeleteResult"`
		Xmlns   string       `xml:"xmlns,attr"`
		Deleted []deletedXML `xml:"Deleted"`
		Errors  []errorXML   `xml:"Error"`
	}{Xmlns: s3Namespace}
	bypass := strings.EqualFold(r.Header.Get("X-Amz-Bypass-Governance-Retention"), "true")
	var events []*s3Event
	s.mu.Lock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	for _, o := range in.Objects {
		action := "s3:DeleteObject"
		if o.VersionID != "" {
			action = "s3:DeleteObjectVersion"
		}
		if !s.allowed(r, action, ObjectARN(bucketName, o.Key), nil) {
			out.Errors = append(out.Errors, errorXML{o.Key, o.VersionID, "AccessDenied", "Access Denied"})
			continue
		}
		res, apiErr := b.deleteLocked(o.Key, o.VersionID, bypass)
		if apiErr != nil {
			out.Errors = append(out.Errors, errorXML{o.Key, o.VersionID, apiErr.Code, apiErr.Message})
			continue
		}
		events = append(events, res.event)
		if in.Quiet {
			continue
		}
		d := deletedXML{Key: o.Key, VersionID: o.VersionID, DeleteMarker: res.deleteMarker}
		if res.markerMade {
			d.DeleteMarkerVersionID = res.versionID
		}
		out.Deleted = append(out.Deleted, d)
	}
	s.mu.Unlock()
	core.WriteXML(w, http.StatusOK, out)
	for _, ev := range events {
		s.emit(ev)
	}
	return nil
}

func hasChecksumHeader(h http.Header) bool {
	for name := range checksumAlgorithms {
		if h.Get("X-Amz-Checksum-"+name) != "" {
			return true
		}
	}
	return false
}

// getObjectAttributes is GetObjectAttributes: the attributes named in
// x-amz-object-attributes (ETag, Checksum, ObjectParts, StorageClass,
// ObjectSize), without reading the object.
func (s *Service) getObjectAttributes(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	want := map[string]bool{}
	for _, a := range strings.Split(strings.Join(r.Header.Values("X-Amz-Object-Attributes"), ","), ",") {
		if a = strings.TrimSpace(a); a != "" {
			want[a] = true
		}
	}
	if len(want) == 0 {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "Missing required header for this request: x-amz-object-attributes")
	}
	s.mu.RLock()
	b, v, apiErr := s.visibleVersion(r, bucketName, key)
	if apiErr != nil {
		s.mu.RUnlock()
		return apiErr
	}
	found := *v
	writeVersionHeaders(w, b, v)
	s.mu.RUnlock()

	type checksumSet struct {
		Checksums    []checksumXML
		ChecksumType string `xml:"ChecksumType"`
	}
	type partXML struct {
		PartNumber int   `xml:"PartNumber"`
		Size       int64 `xml:"Size"`
		Checksums  []checksumXML
	}
	type partsXML struct {
		TotalPartsCount int       `xml:"TotalPartsCount"`
		PartsCount      int       `xml:"PartsCount"`
		MaxParts        int       `xml:"MaxParts"`
		IsTruncated     bool      `xml:"IsTruncated"`
		Parts           []partXML `xml:"Part"`
	}
	out := struct {
		XMLName      xml.Name     `xml:"GetObjectAttributesResponse"`
		Xmlns        string       `xml:"xmlns,attr"`
		ETag         string       `xml:"ETag,omitempty"`
		Checksum     *checksumSet `xml:"Checksum,omitempty"`
		ObjectParts  *partsXML    `xml:"ObjectParts,omitempty"`
		StorageClass string       `xml:"StorageClass,omitempty"`
		ObjectSize   *int64       `xml:"ObjectSize,omitempty"`
	}{Xmlns: s3Namespace}
	name := xml.Name{Local: "Checksum" + checksumName(found.checksumAlg)}
	if want["ETag"] {
		out.ETag = strings.Trim(found.etag, `"`)
	}
	if want["Checksum"] && found.checksum != "" {
		out.Checksum = &checksumSet{Checksums: []checksumXML{{XMLName: name, Value: found.checksum}}, ChecksumType: found.checksumType}
	}
	if want["ObjectParts"] && found.parts != nil {
		op := &partsXML{TotalPartsCount: len(found.parts), PartsCount: len(found.parts), MaxParts: 1000}
		for _, p := range found.parts {
			px := partXML{PartNumber: p.number, Size: p.size}
			if found.checksumType == "COMPOSITE" {
				px.Checksums = []checksumXML{{XMLName: name, Value: p.checksum}}
			}
			op.Parts = append(op.Parts, px)
		}
		out.ObjectParts = op
	}
	if want["StorageClass"] {
		out.StorageClass = found.storageClass
	}
	if want["ObjectSize"] {
		size := found.size
		out.ObjectSize = &size
	}
	w.Header().Set("Last-Modified", found.lastModified.Format(http.TimeFormat))
	core.WriteXML(w, http.StatusOK, out)
	return nil
}
