package verify

import (
	"math"

	"github.com/s3rekey/s3rekey/internal/cost"
)

// Assumptions of the table's cost: S3 Tables prices its GET requests like
// S3's (S3 pricing, S3 Tables: "GET and all other requests"), and a live
// inventory table holds about RowsPerTableFile rows a data file after S3's
// compaction. The table's own charges (backfill, monthly fee above a
// billion objects) are S3 Metadata's, not verify's, and not counted.
const (
	RowsPerTableFile = 1_000_000
	catalogRequests  = 3 // GetBucketMetadataConfiguration, getConfig, loadTable
	versionsPerList  = 1000
)

// SourceCost is what a verification costs from one source.
type SourceCost struct {
	Source         string  `json:"source"`
	ObjectRequests int64   `json:"objectRequests"` // HEADs
	OtherRequests  int64   `json:"otherRequests"`  // LIST, table files, report files, catalog
	Dollars        float64 `json:"dollars"`
	PerMillion     float64 `json:"perMillionVersions"`
}

// Costs prices a verification of versions object versions, kmsVersions
// of them SSE-KMS or DSSE-KMS, from each source; reportFiles are the
// inventory report's data files. The table's cost with recent adds the
// listing that names versions newer than its snapshot.
func Costs(versions, kmsVersions int64, reportFiles int, recent bool) []SourceCost {
	lists := int64(math.Ceil(float64(versions) / versionsPerList))
	tableFiles := int64(math.Ceil(float64(versions)/RowsPerTableFile)) + 2 // data files, manifest list, manifest
	table := SourceCost{Source: SourceTable, OtherRequests: tableFiles + catalogRequests,
		Dollars: float64(tableFiles+catalogRequests) * cost.S3GetPerRequest}
	if recent {
		table.Source += " --recent"
		table.OtherRequests += lists
		table.Dollars += float64(lists) * cost.S3PutPerRequest
	}
	inv := SourceCost{Source: SourceInventory, ObjectRequests: kmsVersions, OtherRequests: int64(reportFiles) + 2,
		Dollars: float64(kmsVersions+int64(reportFiles)+2) * cost.S3GetPerRequest}
	listing := SourceCost{Source: SourceListing, ObjectRequests: versions, OtherRequests: lists,
		Dollars: float64(versions)*cost.S3GetPerRequest + float64(lists)*cost.S3PutPerRequest}
	out := []SourceCost{table, inv, listing}
	for i := range out {
		if versions > 0 {
			out[i].PerMillion = out[i].Dollars / float64(versions) * 1e6
		}
	}
	return out
}
