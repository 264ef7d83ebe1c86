package emulator

import (
	"net/http"
	"strings"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
	"github.com/s3rekey/s3rekey/internal/emulator/s3tables"
)

// newTables makes the S3 Metadata service and has S3 report object
// changes to it.
func (e *Emulator) newTables() {
	e.tables = s3tables.New(e.opts.Account, e.opts.Region, e.counter)
	e.tables.SetLag(e.opts.MetadataLag)
	e.tables.Backfill = e.s3.Versions
	e.tables.BucketExists = e.s3.HasBucket
	e.s3.Watcher = e.tables
}

// SetMetadataLag sets how long after a change the live inventory tables
// show it; changes already shown stay shown.
func (e *Emulator) SetMetadataLag(d time.Duration) { e.tables.SetLag(d) }

// serveTables serves the S3 Tables Iceberg REST endpoint, the table
// files, and the S3 Metadata operations on general purpose buckets. It
// reports whether the request was one of those.
func (e *Emulator) serveTables(w http.ResponseWriter, r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, s3tables.CatalogPrefix) {
		if fault, err := e.before(r.Context(), "s3tables", "catalog", ""); err != nil || fault != nil {
			if fault != nil {
				http.Error(w, fault.Message, fault.Status)
			}
			return true
		}
		e.tables.ServeCatalog(w, r)
		return true
	}
	bucketName, key, err := s3.SplitPath(r)
	if err != nil {
		return false
	}
	op := s3tables.S3Operation(r, key)
	warehouse := op == "" && bucketName != "" && e.tables.IsWarehouse(bucketName)
	if op == "" && !warehouse {
		return false
	}
	core.SetS3RequestIDs(w)
	if _, ok := core.ParseSigV4(r); !ok {
		core.WriteS3Error(w, r, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied"))
		return true
	}
	var apiErr *core.Error
	if warehouse {
		apiErr = e.tables.ServeFile(w, r, bucketName, key)
	} else if fault, err := e.before(r.Context(), "s3", op, bucketName); err != nil {
		return true
	} else if fault != nil {
		apiErr = fault
	} else {
		apiErr = e.tables.ServeS3(w, r, op, bucketName)
	}
	if apiErr != nil {
		core.WriteS3Error(w, r, apiErr)
	}
	return true
}
