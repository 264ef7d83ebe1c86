package s3

import (
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// maxAnnotation bounds one annotation's payload in the in-memory store.
const maxAnnotation = 1 << 20

// putObjectAnnotation stores one named annotation on the current version
// (API_PutObjectAnnotation).
func (s *Service) putObjectAnnotation(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	name := r.URL.Query().Get("annotationName")
	if name == "" {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "annotationName is required")
	}
	body, apiErr := readBody(r)
	if apiErr != nil {
		return apiErr
	}
	if len(body) > maxAnnotation {
		return core.Errorf(http.StatusBadRequest, "EntityTooLarge", "Your annotation exceeds the emulator's maximum size")
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
	if v.annotations == nil {
		v.annotations = map[string][]byte{}
	}
	v.annotations[name] = body
	writeVersionHeaders(w, b, v)
	w.WriteHeader(http.StatusOK)
	return nil
}

// listObjectAnnotations lists a version's annotation names
// (API_ListObjectAnnotations), at most max-annotation-results of them.
func (s *Service) listObjectAnnotations(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	limit := 1000
	if m := r.URL.Query().Get("max-annotation-results"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 1000 {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "max-annotation-results must be between 1 and 1000")
		}
		limit = n
	}
	s.mu.RLock()
	b, v, apiErr := s.visibleVersion(r, bucketName, key)
	if apiErr != nil {
		s.mu.RUnlock()
		return apiErr
	}
	names := make([]string, 0, len(v.annotations))
	for n := range v.annotations {
		names = append(names, n)
	}
	sort.Strings(names)
	type entry struct {
		Name string `xml:"AnnotationName"`
		Size int    `xml:"Size"`
	}
	out := struct {
		XMLName     xml.Name `xml:"ListObjectAnnotationsResult"`
		Xmlns       string   `xml:"xmlns,attr"`
		Bucket      string   `xml:"Bucket"`
		Key         string   `xml:"Key"`
		Count       int      `xml:"AnnotationCount"`
		Annotations []entry  `xml:"Annotations>AnnotationEntry"`
	}{Xmlns: s3Namespace, Bucket: bucketName, Key: key, Count: len(names)}
	for i, n := range names {
		if i == limit {
			break
		}
		out.Annotations = append(out.Annotations, entry{Name: n, Size: len(v.annotations[n])})
	}
	writeVersionHeaders(w, b, v)
	s.mu.RUnlock()
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

// copiedAnnotations are the annotations a CopyObject gives its copy:
// the source's under x-amz-object-annotation-directive COPY (the default),
// which needs s3:GetObjectAnnotation on the source and
// s3:PutObjectAnnotation on the destination; none under EXCLUDE
// (API_CopyObject). A multipart copy never carries them.
func (s *Service) copiedAnnotations(r *http.Request, sv *objectVersion, srcBucket, srcKey, bucketName, key string) (map[string][]byte, *core.Error) {
	switch r.Header.Get("X-Amz-Object-Annotation-Directive") {
	case "EXCLUDE":
		return nil, nil
	case "", "COPY":
	default:
		return nil, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Unknown annotation directive.")
	}
	if len(sv.annotations) == 0 {
		return nil, nil
	}
	if !s.allowed(r, "s3:GetObjectAnnotation", ObjectARN(srcBucket, srcKey), nil) || !s.allowed(r, "s3:PutObjectAnnotation", ObjectARN(bucketName, key), nil) {
		return nil, errAccessDenied()
	}
	out := make(map[string][]byte, len(sv.annotations))
	for n, p := range sv.annotations {
		out[n] = append([]byte(nil), p...)
	}
	return out, nil
}
