package s3tables

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
)

// metadataConfiguration is CreateBucketMetadataConfiguration's body (S3 API
// reference, CreateBucketMetadataConfiguration): a journal table, which is
// required, and an optional live inventory table.
type metadataConfiguration struct {
	XMLName xml.Name `xml:"MetadataConfiguration"`
	Journal *struct {
		RecordExpiration struct {
			Expiration string `xml:"Expiration"`
			Days       int    `xml:"Days"`
		} `xml:"RecordExpiration"`
	} `xml:"JournalTableConfiguration"`
	Inventory *struct {
		ConfigurationState string `xml:"ConfigurationState"`
	} `xml:"InventoryTableConfiguration"`
}

// configurationResult is GetBucketMetadataConfiguration's answer (S3 API
// reference, GetBucketMetadataConfiguration).
type configurationResult struct {
	XMLName xml.Name `xml:"GetBucketMetadataConfigurationResult"`
	Result  struct {
		Destination struct {
			TableBucketArn  string `xml:"TableBucketArn"`
			TableBucketType string `xml:"TableBucketType"`
			TableNamespace  string `xml:"TableNamespace"`
		} `xml:"DestinationResult"`
		Inventory struct {
			ConfigurationState string `xml:"ConfigurationState"`
			TableArn           string `xml:"TableArn,omitempty"`
			TableName          string `xml:"TableName,omitempty"`
			TableStatus        string `xml:"TableStatus,omitempty"`
		} `xml:"InventoryTableConfigurationResult"`
		Journal struct {
			RecordExpiration struct {
				Expiration string `xml:"Expiration"`
				Days       int    `xml:"Days,omitempty"`
			} `xml:"RecordExpiration"`
			TableArn    string `xml:"TableArn"`
			TableName   string `xml:"TableName"`
			TableStatus string `xml:"TableStatus"`
		} `xml:"JournalTableConfigurationResult"`
	} `xml:"MetadataConfigurationResult"`
}

// S3Operation names the S3 Metadata operation of a request on a general
// purpose bucket, or "" when it is not one.
func S3Operation(r *http.Request, key string) string {
	if _, ok := r.URL.Query()["metadataConfiguration"]; !ok || key != "" {
		return ""
	}
	switch r.Method {
	case http.MethodPost:
		return "CreateBucketMetadataConfiguration"
	case http.MethodGet:
		return "GetBucketMetadataConfiguration"
	case http.MethodDelete:
		return "DeleteBucketMetadataConfiguration"
	}
	return ""
}

// ServeS3 runs an S3 Metadata operation named by S3Operation.
func (s *Service) ServeS3(w http.ResponseWriter, r *http.Request, op, bucket string) *core.Error {
	if s.BucketExists != nil && !s.BucketExists(bucket) {
		return core.Errorf(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	}
	switch op {
	case "CreateBucketMetadataConfiguration":
		return s.create(w, r, bucket)
	case "GetBucketMetadataConfiguration":
		return s.get(w, bucket)
	default:
		return s.delete(w, bucket)
	}
}

func (s *Service) create(w http.ResponseWriter, r *http.Request, bucket string) *core.Error {
	var in metadataConfiguration
	if err := core.ReadXML(r, 1<<16, &in); err != nil {
		return err
	}
	if in.Journal == nil {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "JournalTableConfiguration is required.")
	}
	exp := in.Journal.RecordExpiration.Expiration
	if exp != "ENABLED" && exp != "DISABLED" {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "RecordExpiration Expiration must be ENABLED or DISABLED.")
	}
	inventory := false
	if in.Inventory != nil {
		switch in.Inventory.ConfigurationState {
		case "ENABLED":
			inventory = true
		case "DISABLED":
		default:
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "InventoryTableConfiguration ConfigurationState must be ENABLED or DISABLED.")
		}
	}
	var backfill []s3.ObjectState
	if inventory && s.Backfill != nil {
		backfill = s.Backfill(bucket)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.tables[bucket]; exists {
		// The API reference does not give this error's code; a bucket has
		// one metadata configuration, so a second is a conflict.
		return core.Errorf(http.StatusConflict, "MetadataConfigurationAlreadyExists", "The bucket already has a metadata configuration.")
	}
	id := core.NewUUID()
	t := &table{
		source: bucket, id: id, warehouse: strings.ReplaceAll(id, "-", "")[:24] + "--table-s3",
		created: s.now().UTC(), inventory: inventory, rows: map[string][]row{}, files: map[string][]byte{},
		journal: journalConfig{expiration: exp, days: in.Journal.RecordExpiration.Days},
	}
	s.tables[bucket] = t
	if inventory {
		s.byStore[t.warehouse] = t
		t.backfill(backfill)
		if err := s.commit(t); err != nil {
			delete(s.tables, bucket)
			delete(s.byStore, t.warehouse)
			return core.Errorf(http.StatusInternalServerError, "InternalError", err.Error())
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) get(w http.ResponseWriter, bucket string) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[bucket]
	if !ok {
		// Not named by the API reference either; 404 like the other
		// missing bucket configurations.
		return core.Errorf(http.StatusNotFound, "MetadataConfigurationNotFound", "The specified bucket does not have a metadata configuration.")
	}
	var out configurationResult
	d := &out.Result.Destination
	d.TableBucketArn, d.TableBucketType, d.TableNamespace = s.TableBucketARN(), "aws", namespace(bucket)
	out.Result.Inventory.ConfigurationState = "DISABLED"
	if t.inventory {
		inv := &out.Result.Inventory
		inv.ConfigurationState, inv.TableName, inv.TableStatus = "ENABLED", InventoryTable, "ACTIVE"
		inv.TableArn = s.TableBucketARN() + "/table/" + t.id
	}
	j := &out.Result.Journal
	j.RecordExpiration.Expiration, j.RecordExpiration.Days = t.journal.expiration, t.journal.days
	j.TableArn, j.TableName, j.TableStatus = s.TableBucketARN()+"/table/"+t.id+"-journal", "journal", "ACTIVE"
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

func (s *Service) delete(w http.ResponseWriter, bucket string) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[bucket]
	if !ok {
		return core.Errorf(http.StatusNotFound, "MetadataConfigurationNotFound", "The specified bucket does not have a metadata configuration.")
	}
	delete(s.tables, bucket)
	delete(s.byStore, t.warehouse)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
