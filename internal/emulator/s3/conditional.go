package s3

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// destinationPreconditions checks the conditional-write headers of a
// CopyObject or CompleteMultipartUpload against the destination key's
// current object (userguide conditional-writes; API_CopyObject and
// API_CompleteMultipartUpload, If-Match and If-None-Match): If-None-Match
// "*" fails when an object exists, If-Match when the current object's ETag
// differs or there is none. Both answer 412 PreconditionFailed.
func destinationPreconditions(r *http.Request, b *bucket, key string) *core.Error {
	match, noneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if match == "" && noneMatch == "" {
		return nil
	}
	cur := b.current(key)
	exists := cur != nil && !cur.deleteMarker
	failed := core.Errorf(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	if noneMatch != "" && exists {
		return failed
	}
	if match != "" {
		if !exists {
			return core.Errorf(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		}
		if strings.Trim(match, `"`) != strings.Trim(cur.etag, `"`) {
			return failed
		}
	}
	return nil
}

// partChecksumGiven checks, at CompleteMultipartUpload, the checksum a
// part must carry when its upload was created with a checksum algorithm
// (API_CompletedPart: "This checksum is present if the multipart upload
// request was created with the <ALG> checksum algorithm"). S3 refuses a
// missing one with 400 InvalidRequest and a wrong one with InvalidPart.
func partChecksumGiven(up *upload, number int, stored *part, given map[string]string) *core.Error {
	if up.checksumAlg == "" {
		return nil
	}
	sent := given[up.checksumAlg]
	switch {
	case sent == "":
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "The upload was created using a "+up.checksumAlg+
			" checksum. The complete request must include the checksum for each part. It was missing for part "+strconv.Itoa(number)+" in the request.")
	case sent != stored.checksum:
		return core.Errorf(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
	}
	return nil
}
