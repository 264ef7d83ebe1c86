package s3tables

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// CatalogPrefix is the path of the Iceberg REST endpoint
// (s3-tables-integrating-open-source: https://s3tables.REGION.amazonaws.com/iceberg).
const CatalogPrefix = "/iceberg/"

// SigningName is the SigV4 service name of the endpoint's requests.
const SigningName = "s3tables"

// icebergError is the Iceberg REST catalog's ErrorModel.
func icebergError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": status}})
}

// ServeCatalog answers the Iceberg REST operations the live inventory table
// needs (s3-tables-integrating-open-source, "Supported Iceberg REST API
// operations"): getConfig, listNamespaces, listTables, loadTable and
// tableExists. The {prefix} is the URL-encoded table bucket ARN.
func (s *Service) ServeCatalog(w http.ResponseWriter, r *http.Request) {
	scope, ok := core.ParseSigV4(r)
	if !ok || scope.Service != SigningName {
		icebergError(w, http.StatusForbidden, "NotAuthorizedException", "requests must be signed with SigV4 for the s3tables service")
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), CatalogPrefix)
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	if len(parts) == 0 || parts[0] != "v1" {
		icebergError(w, http.StatusNotFound, "NotFoundException", "unknown path")
		return
	}
	parts = parts[1:]
	switch {
	case len(parts) == 1 && parts[0] == "config" && r.Method == http.MethodGet:
		s.counter.Add(SigningName, "GetTableBucket", "")
		wh := r.URL.Query().Get("warehouse")
		if wh != "" && wh != s.TableBucketARN() {
			icebergError(w, http.StatusNotFound, "NoSuchWarehouseException", "no table bucket "+wh)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"defaults": map[string]string{},
			"overrides": map[string]string{"prefix": url.PathEscape(s.TableBucketARN())}})
	case len(parts) >= 2 && parts[0] != s.TableBucketARN():
		icebergError(w, http.StatusNotFound, "NoSuchWarehouseException", "no table bucket "+parts[0])
	case len(parts) == 2 && parts[1] == "namespaces" && r.Method == http.MethodGet:
		s.counter.Add(SigningName, "ListNamespaces", "")
		s.mu.Lock()
		var out [][]string
		for _, b := range sortedNames(s.tables) {
			if s.tables[b].inventory {
				out = append(out, []string{namespace(b)})
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"namespaces": out})
	case len(parts) == 4 && parts[1] == "namespaces" && parts[3] == "tables" && r.Method == http.MethodGet:
		s.counter.Add(SigningName, "ListTables", "")
		s.mu.Lock()
		_, ok := s.tableByNamespace(parts[2])
		s.mu.Unlock()
		if !ok {
			icebergError(w, http.StatusNotFound, "NoSuchNamespaceException", "Namespace does not exist: "+parts[2])
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"identifiers": []any{map[string]any{"namespace": []string{parts[2]}, "name": InventoryTable}}})
	case len(parts) == 5 && parts[1] == "namespaces" && parts[3] == "tables":
		s.loadTable(w, r, parts[2], parts[4])
	default:
		icebergError(w, http.StatusNotFound, "NotFoundException", "the emulator does not serve "+r.Method+" "+r.URL.Path)
	}
}

func (s *Service) loadTable(w http.ResponseWriter, r *http.Request, ns, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		icebergError(w, http.StatusMethodNotAllowed, "BadRequestException", "the inventory table is read-only")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tableByNamespace(ns)
	if !ok || name != InventoryTable {
		if r.Method == http.MethodHead {
			s.counter.Add(SigningName, "GetTable", "")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		s.counter.Add(SigningName, "GetTableMetadataLocation", "")
		icebergError(w, http.StatusNotFound, "NoSuchTableException", "Table does not exist: "+ns+"."+name)
		return
	}
	if r.Method == http.MethodHead {
		s.counter.Add(SigningName, "GetTable", "")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.counter.Add(SigningName, "GetTableMetadataLocation", "")
	if err := s.catchUp(t); err != nil {
		icebergError(w, http.StatusInternalServerError, "ServiceFailureException", err.Error())
		return
	}
	meta := json.RawMessage(t.files[t.metadataKey])
	writeJSON(w, http.StatusOK, map[string]any{
		"metadata-location": "s3://" + t.warehouse + "/" + t.metadataKey,
		"metadata":          meta,
		"config":            map[string]string{},
	})
}

// IsWarehouse reports a bucket name that holds a table's files.
func (s *Service) IsWarehouse(bucket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byStore[bucket]
	return ok
}

// ServeFile answers GET and HEAD of a table file in its warehouse bucket,
// as the S3 API serves table data (s3tables:GetTableData).
func (s *Service) ServeFile(w http.ResponseWriter, r *http.Request, bucket, key string) *core.Error {
	s.counter.Add(SigningName, "GetTableData", bucket)
	s.mu.Lock()
	t, ok := s.byStore[bucket]
	var data []byte
	if ok {
		data, ok = t.files[key]
	}
	s.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return core.Errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "table files are written by S3 only")
	}
	if !ok {
		return core.Errorf(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeJSON answers with a JSON document, as the REST catalog does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
